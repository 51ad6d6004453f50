"""Burns et al.'s product loss and EleutherAI's probe filtering, against values by hand."""

import math

import numpy as np
import pytest
import torch

from models.losses import ProductLoss, product_targets, soft_cross_entropy
from models.methods import METHODS, StudentData, fit_student
from models.probe_filter import LogisticProbe, ProbeFilter, disagreement, keep_agreeing, knn_predict
from models.training import FitSpec


def test_product_target_by_hand():
    logits = torch.tensor([[math.log(3.0), 0.0]])  # student (.75, .25)
    weak = torch.tensor([[0.2, 0.8]])
    # alpha = beta = 1: (.75 · .2, .25 · .8) = (.15, .2), renormalised (3/7, 4/7)
    assert product_targets(logits, weak)[0].tolist() == pytest.approx([3 / 7, 4 / 7])
    # alpha = 2, beta = .5: (sqrt(.75) · .04, sqrt(.25) · .64) = (.034641, .32)
    a, b = math.sqrt(0.75) * 0.04, 0.5 * 0.64
    assert product_targets(logits, weak, alpha=2.0, beta=0.5)[0].tolist() == pytest.approx([a / (a + b), b / (a + b)])
    # a hard weak label stays hard
    assert product_targets(logits, torch.tensor([[0.0, 1.0]])).tolist() == [[0.0, 1.0]]


def test_product_loss_is_cross_entropy_against_a_target_without_gradient():
    logits = torch.tensor([[math.log(3.0), 0.0], [0.0, 1.0]], requires_grad=True)
    weak = torch.tensor([[0.2, 0.8], [0.6, 0.4]])
    loss = ProductLoss()(logits, weak, None, 0, 10)
    target = product_targets(logits.detach(), weak)
    expected = -(target * torch.log_softmax(logits.detach(), -1)).sum(-1).mean()
    assert float(loss.detach()) == pytest.approx(float(expected))
    loss.backward()
    # gradient of CE with a constant target: (softmax - target) / n, nothing through the target
    np.testing.assert_allclose(logits.grad.numpy(), ((torch.softmax(logits.detach(), -1) - target) / 2).numpy(), atol=1e-6)
    assert float(soft_cross_entropy(logits.detach(), target)) == pytest.approx(float(expected))


def test_knn_probe_by_hand():
    """Points 0, 1, 3, 10, 12 with positive labels 1, 1, 0, 0, 0 and k = 2: each point is its
    own nearest neighbour; point 3's other neighbour is 1, so the probe says .5 there."""
    x = np.array([[0.0], [1.0], [3.0], [10.0], [12.0]])
    p1 = np.array([1.0, 1.0, 0.0, 0.0, 0.0])
    labels = np.c_[1 - p1, p1]
    pred = knn_predict(x, labels, x, k=2)
    assert pred[:, 1].tolist() == pytest.approx([1.0, 1.0, 0.5, 0.0, 0.0])
    assert disagreement(pred, labels).tolist() == pytest.approx([0, 0, 0.5, 0, 0])
    assert keep_agreeing(pred, labels, 0.2).tolist() == [True, True, False, True, True]
    # int(contamination · n): 10% of 9 points drops none
    assert keep_agreeing(pred[[0, 1, 2, 3, 4, 0, 1, 3, 4]], labels[[0, 1, 2, 3, 4, 0, 1, 3, 4]], 0.1).all()


def test_logistic_probe_minimises_the_authors_objective():
    """mean BCE(sigmoid(xw + b), p) + l2p · ||w||², checked against scipy's minimiser."""
    from scipy.optimize import minimize

    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 3))
    p1 = 1 / (1 + np.exp(-(x @ np.array([1.5, -2.0, 0.5]) + 0.3 + rng.normal(0, 0.5, 80))))
    l2p = 0.05

    def objective(theta):
        z = x @ theta[:3] + theta[3]
        bce = np.mean(np.logaddexp(0, z) - p1 * z)
        return bce + l2p * np.sum(theta[:3] ** 2)

    best = minimize(objective, np.zeros(4), method="BFGS", options={"gtol": 1e-10}).x
    probe = LogisticProbe(l2p=l2p).fit(x, np.c_[1 - p1, p1])
    ours = np.r_[probe.weight[:, 0].numpy(), probe.bias.numpy()]
    # torch's L-BFGS stops at its default tolerances, as the authors' probe does
    assert objective(ours) == pytest.approx(objective(best), abs=1e-9)
    np.testing.assert_allclose(ours, best, atol=1e-4)
    z = x @ best[:3] + best[3]
    np.testing.assert_allclose(probe.predict(x)[:, 1], 1 / (1 + np.exp(-z)), atol=1e-4)


def _noisy_weak_labels(seed=0, n=300):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    x[:, 0] += 2.5 * (2 * y - 1)
    flipped = rng.random(n) < 0.2
    p1 = np.where(y ^ flipped, 0.8, 0.2)
    return x, np.c_[1 - p1, p1].astype(np.float32), y, flipped


def test_probe_filter_drops_the_flipped_labels_first():
    x, weak, y, flipped = _noisy_weak_labels()
    keep, targets, _, _ = ProbeFilter(contamination=0.1).apply(x, weak, x[:50], weak[:50])
    assert (~keep).sum() == 30 and flipped[~keep].mean() > 0.9  # the points dropped are the flipped ones
    assert targets is weak
    keep, targets, val_keep, val_targets = ProbeFilter(mode="relabel").apply(x, weak, x[:50], weak[:50])
    assert keep.all() and val_keep.all()
    np.testing.assert_allclose(targets, knn_predict(x, weak, x, 20), atol=1e-6)
    assert (targets.argmax(1) == y).mean() > (weak.argmax(1) == y).mean()


@pytest.mark.parametrize("method, params", [("product", {"alpha": 1.0, "beta": 1.0}), ("probe_filter", {"contamination": 0.1})])
def test_both_run_as_student_methods(method, params):
    x, weak, y, _ = _noisy_weak_labels()
    data = StudentData(x=x, weak_probs=weak, x_val=x[:60], val_targets=weak[:60])
    fit, facts = fit_student(FitSpec(C=1.0), data, 0, METHODS[method].Params(**params))
    xent, _ = fit_student(FitSpec(C=1.0), data, 0, METHODS["xent"].Params())
    assert not torch.allclose(fit.net.layers[0].weight, xent.net.layers[0].weight)
    if method == "probe_filter":
        assert facts == {"probe_kept": 270, "probe_val_kept": 54}
