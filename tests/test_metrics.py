import math

import numpy as np
import pytest

from models.metrics import accuracy, model_metrics, pgr, pgr_report, roc_auc, teacher_agreement


def test_pgr_by_hand():
    assert pgr(weak=0.6, ceiling=0.9, w2s=0.75) == pytest.approx(0.5)
    assert pgr(0.6, 0.9, 0.6) == 0.0 and pgr(0.6, 0.9, 0.9) == pytest.approx(1.0)
    assert pgr(0.6, 0.9, 0.5) < 0  # worse than its teacher
    assert math.isnan(pgr(0.7, 0.7, 0.8))


def test_pgr_report_flags_a_tiny_gap():
    weak, ceil = {"acc": 0.700, "auroc": 0.75}, {"acc": 0.705, "auroc": 0.8}
    r = pgr_report(weak, ceil, {"acc": 0.702, "auroc": 0.77})
    assert r["gap_too_small"] and r["pgr"] == pytest.approx(0.4)
    assert r["pgr_auroc"] == pytest.approx(0.4)
    assert not pgr_report({"acc": 0.6, "auroc": 0.6}, {"acc": 0.9, "auroc": 0.9}, {"acc": 0.7, "auroc": 0.7})["gap_too_small"]


def test_pgr_report_flags_a_ceiling_below_the_weak_model_distinctly():
    """Ceiling .65 under weak .70: the gap (-.05) is not small, it is negative, and a
    student at .75, better than both, gets PGR (.75 - .70) / (-.05) = -1."""
    r = pgr_report({"acc": 0.70, "auroc": 0.80}, {"acc": 0.65, "auroc": 0.85}, {"acc": 0.75, "auroc": 0.82})
    assert r["pgr"] == pytest.approx(-1.0)
    assert r["gap_negative"] and not r["gap_too_small"] and not r["gap_auroc_negative"]
    tiny = pgr_report({"acc": 0.70, "auroc": 0.8}, {"acc": 0.695, "auroc": 0.7}, {"acc": 0.7, "auroc": 0.7})
    assert tiny["gap_too_small"] and not tiny["gap_negative"] and tiny["gap_auroc_negative"]


def test_auroc_by_hand_with_ties():
    probs = np.c_[1 - np.array([0.1, 0.4, 0.35, 0.8]), [0.1, 0.4, 0.35, 0.8]]
    assert roc_auc(probs, np.array([0, 0, 1, 1])) == pytest.approx(0.75)
    tied = np.c_[[0.5, 0.5], [0.5, 0.5]]
    assert roc_auc(tied, np.array([0, 1])) == pytest.approx(0.5)


def test_accuracy_per_group_and_agreement():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    labels = np.array([0, 1, 1, 1])
    m = model_metrics(probs, labels, np.array([0, 1, 1, 2]))
    assert m["acc"] == accuracy(probs, labels) == 0.75
    assert (m["acc_easy"], m["acc_hard"], m["acc_overlap"]) == (1.0, 0.5, 1.0)
    teacher = np.array([[0.9, 0.1], [0.9, 0.1], [0.9, 0.1], [0.1, 0.9]])  # right on 0 and 3
    a = teacher_agreement(probs, teacher, labels)
    assert a["agreement"] == 0.75
    assert a["agreement_teacher_right"] == 1.0 and a["agreement_teacher_wrong"] == 0.5


def test_mean_ci_uses_the_t_distribution():
    from models.metrics import mean_ci

    mean, half = mean_ci(np.array([1.0, 2.0, 3.0]))
    assert mean == 2.0
    assert half == pytest.approx(4.302653 * 1.0 / np.sqrt(3), rel=1e-5)  # t(0.975, 2) * sd / sqrt(n)
    assert np.isnan(mean_ci(np.array([5.0]))[1])
    assert mean_ci(np.array([np.nan, 1.0, 1.0])) == (1.0, 0.0)


def test_accuracy_by_cell():
    from models.metrics import accuracy_by_cell

    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    labels = np.array([0, 0, 0, 1])
    cells = np.array([0, 0, 1, 1])
    np.testing.assert_allclose(accuracy_by_cell(probs, labels, cells, 3), [0.5, 1.0, np.nan])
    np.testing.assert_allclose(accuracy_by_cell(probs, labels, cells, 2, where=labels == 1), [np.nan, 1.0])
