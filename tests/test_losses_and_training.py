import math

import numpy as np
import pytest
import torch

from models.classifier import Classifier
from models.losses import l2_penalty, soft_cross_entropy
from models.labels import one_hot
from models.training import FitSpec, fit_classifier, load_classifier, predict_probs, save_classifier


def test_soft_cross_entropy_by_hand():
    logits = torch.tensor([[[0.0, 0.0], [math.log(3.0), 0.0]]])  # p = (.5,.5), (.75,.25)
    target = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    expected = (math.log(2) + 0.5 * (-math.log(0.75) - math.log(0.25))) / 2
    assert float(soft_cross_entropy(logits, target)) == pytest.approx(expected)


def test_l2_penalty_matches_sklearn_scaling():
    w = torch.tensor([[1.0, 2.0]])
    assert float(l2_penalty(w, C=0.5, n=10)) == pytest.approx(5.0 / (2 * 0.5 * 10))


def test_replicas_are_independent_models():
    torch.manual_seed(0)
    net = Classifier(3, 2, replicas=4)
    x = torch.randn(5, 3)
    out = net(x)
    assert out.shape == (4, 5, 2)
    assert not torch.allclose(out[0], out[1])


def _separable(n=400, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 5)).astype(np.float32)
    x[:, 0] += 3 * (2 * y - 1)
    return x, y


def test_lightning_fit_learns_and_keeps_per_epoch_history(tmp_path):
    x, y = _separable()
    xv, yv = _separable(200, seed=1)
    spec = FitSpec(C=1.0, epochs=5, lbfgs_iters=10)
    result = fit_classifier(spec, x, one_hot(y, 2), xv, one_hot(yv, 2), seed=0)
    assert (predict_probs(result.net, xv).argmax(1) == yv).mean() > 0.95
    assert result.history and {"epoch", "train_loss", "val_loss", "val_acc"} <= set(result.history[0])
    assert 0 <= result.best_epoch < len(result.history)
    save_classifier(result, spec, tmp_path / "m")
    np.testing.assert_array_equal(predict_probs(load_classifier(tmp_path / "m"), xv), predict_probs(result.net, xv))


def test_stronger_l2_shrinks_weights():
    x, y = _separable()
    fits = [fit_classifier(FitSpec(C=C, epochs=3), x, one_hot(y, 2), x, one_hot(y, 2), seed=0) for C in (1.0, 0.001)]
    norms = [float(f.net.layers[0].weight.detach().norm()) for f in fits]
    assert norms[1] < 0.5 * norms[0]


def test_same_seed_gives_identical_weights():
    x, y = _separable()
    spec = FitSpec(arch="mlp", hidden=8, optimizer="adam", lr=0.01, epochs=4)
    a, b = (fit_classifier(spec, x, one_hot(y, 2), x, one_hot(y, 2), seed=3) for _ in range(2))
    for pa, pb in zip(a.net.parameters(), b.net.parameters()):
        assert torch.equal(pa, pb)


def test_minibatches_give_losses_every_step_of_the_schedule():
    from flows.config import ModelConfig
    from models.losses import soft_cross_entropy
    from tasks.fitting import fit_spec

    spec = fit_spec(ModelConfig(optimizer="adam", lr=0.01, epochs=2, batch_size=100))
    assert spec.batch_size == 100
    x, y = _separable(400)
    seen = []

    def recording_loss(logits, target, weights, step, total_steps):
        seen.append((step, total_steps, logits.shape[-2]))
        return soft_cross_entropy(logits, target, weights)

    result = fit_classifier(spec, x, one_hot(y, 2), x, one_hot(y, 2), seed=0, loss_fn=recording_loss)
    assert [s for s, _, _ in seen] == list(range(8))  # 2 epochs × 4 batches, one loss per step
    assert {t for _, t, _ in seen} == {8} and {n for _, _, n in seen} == {100}
    assert len(result.history) == 2  # validation once per epoch, after its last batch
