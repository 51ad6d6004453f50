import math

import numpy as np
import pytest
import torch

from models.classifier import Classifier
from models.losses import l2_penalty, soft_cross_entropy
from models.labels import one_hot
from models.training import FitSpec, fit_classifier, load_classifier, predict_probs, save_classifier
from models.head import fit_spec


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
    from tasks.specs import ModelConfig
    from models.losses import soft_cross_entropy

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


def test_a_scheduled_loss_settles_at_the_epoch_its_schedule_ends():
    from models.losses import AdaptConfLoss, AuxConfLoss
    from models.training import first_settled_epoch

    # 10 full-batch L-BFGS steps, warm-up 0.2: alpha is final from step 2, so from epoch 2.
    assert first_settled_epoch(AuxConfLoss(warmup=0.2), 10, 1, 10) == 2
    # 30 steps of 3 batches an epoch: step 6 opens epoch 2; a beta ramp of 0.25 ends at step 8, in epoch 2.
    assert first_settled_epoch(AuxConfLoss(warmup=0.2), 30, 3, 10) == 2
    assert first_settled_epoch(AdaptConfLoss(beta_ramp=0.25), 30, 3, 10) == 3
    assert first_settled_epoch(AdaptConfLoss(beta_ramp=0.0), 30, 3, 10) == 0
    assert first_settled_epoch(AuxConfLoss(warmup=1.0), 10, 1, 10) == 9  # never settles: the last epoch
    assert first_settled_epoch(None, 10, 1, 10) == 0


def test_early_stopping_waits_for_the_auxiliary_loss_under_full_batch_lbfgs():
    """Fitting the weak labels is best at epoch 0 on their own val labels; a checkpoint
    chosen there is plain cross-entropy. aux_conf's student must be chosen once alpha is
    at alpha_max, and so differs from xent's."""
    from models.losses import AuxConfLoss

    rng = np.random.default_rng(0)
    x, y = _separable(400)
    soft = np.clip(np.where(y == 1, 0.7, 0.3) + rng.normal(0, 0.15, len(y)), 0.02, 0.98)
    weak = np.c_[1 - soft, soft].astype(np.float32)
    spec = FitSpec(C=0.01)
    xent = fit_classifier(spec, x, weak, x[:100], weak[:100], seed=0)
    aux = fit_classifier(spec, x, weak, x[:100], weak[:100], seed=0, loss_fn=AuxConfLoss())
    assert xent.best_epoch == 0  # on weak labels, imitation wins at once
    assert aux.best_epoch >= 2 and len(aux.history) >= 2 + spec.patience
    assert not np.allclose(predict_probs(aux.net, x), predict_probs(xent.net, x), atol=1e-3)


def _soft_five_class_problem(seed: int, n: int = 200, d: int = 64):
    """A weak teacher whose argmax is right 3 times in 4 but whose probabilities are soft
    (mean max-probability ~0.43 over 5 classes), as the bundled text sources' teachers."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(d, 5))
    x = rng.normal(size=(n + 400, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    logits = x @ w * np.sqrt(d)
    z = 0.1 * logits + 0.3 * rng.normal(size=logits.shape)
    p = np.exp(z - z.max(1, keepdims=True))
    p = (p / p.sum(1, keepdims=True)).astype(np.float32)
    y = logits.argmax(1)
    return (x[:n], p[:n]), (x[n:], p[n:], y[n:])


@pytest.mark.parametrize("seed", range(3))
def test_adapt_conf_does_not_collapse_a_full_batch_lbfgs_student_on_soft_labels(seed):
    """Its targets (beta, the student's own argmax) recomputed at every L-BFGS evaluation,
    the line search minimised the self-referential objective: one class everywhere, near
    chance. Targets fixed per step, fresh L-BFGS memory per step and beta ramped from 0
    keep the student informative."""
    from models.losses import AdaptConfLoss

    (x, weak), (x_test, weak_test, y_test) = _soft_five_class_problem(seed)
    fit = fit_classifier(FitSpec(C=1.0), x, weak, x_test, weak_test, seed=0, loss_fn=AdaptConfLoss())
    pred = predict_probs(fit.net, x_test).argmax(1)
    assert (pred == y_test).mean() > 0.5
    assert np.bincount(pred, minlength=5).max() / len(pred) < 0.45


def test_self_referential_targets_are_computed_once_per_optimiser_step():
    from models.losses import AuxConfLoss

    class Counting(AuxConfLoss):
        calls: list = []

        def step_targets(self, logits, target, weights, step, total_steps):
            Counting.calls.append(step)
            return super().step_targets(logits, target, weights, step, total_steps)

    x, y = _separable(200)
    weak = np.c_[np.where(y == 1, 0.3, 0.7), np.where(y == 1, 0.7, 0.3)].astype(np.float32)
    fit = fit_classifier(FitSpec(C=1.0, epochs=4, patience=10), x, weak, None, None, seed=0, loss_fn=Counting())
    assert Counting.calls == [0, 1, 2, 3]  # L-BFGS evaluated the loss far more often than that
    assert len(fit.history) == 4


def test_lbfgs_moves_when_the_auxiliary_term_comes_in():
    """L-BFGS kept its curvature memory across steps; when alpha grew, the stale pairs made
    its steps vanish and the student stayed at the xent solution (same val loss)."""
    from models.losses import AuxConfLoss

    x, y = _separable(400)
    rng = np.random.default_rng(0)
    soft = np.clip(np.where(y == 1, 0.7, 0.3) + rng.normal(0, 0.15, len(y)), 0.02, 0.98)
    weak = np.c_[1 - soft, soft].astype(np.float32)
    fit = fit_classifier(FitSpec(C=0.01), x, weak, x[:100], weak[:100], seed=0, loss_fn=AuxConfLoss())
    val = [h["val_loss"] for h in fit.history]
    assert abs(val[2] - val[0]) > 1e-3
