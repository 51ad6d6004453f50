import numpy as np
import pytest

from models.overlap import detect_overlap, detection_scores, max_alignment, weak_confidence
from models.synthetic import EASY, HARD, OVERLAP


def test_weak_confidence_binary_and_multiclass():
    np.testing.assert_allclose(weak_confidence(np.array([[0.5, 0.5], [0.9, 0.1], [0.0, 1.0]])), [0.0, 0.8, 1.0])
    # three classes: max prob 1/3 is no confidence, 1 is full confidence
    np.testing.assert_allclose(weak_confidence(np.array([[1 / 3] * 3, [1.0, 0, 0], [2 / 3, 1 / 3, 0]])), [0, 1, 0.5])


def test_max_alignment_is_the_largest_absolute_cosine():
    z = np.array([[1.0, 0.0], [0.0, 1.0]])
    ref = np.array([[-1.0, 0.0], [np.sqrt(0.5), np.sqrt(0.5)]])
    np.testing.assert_allclose(max_alignment(z, ref, chunk=1), [1.0, np.sqrt(0.5)])
    assert max_alignment(z, np.empty((0, 2))).tolist() == [0.0, 0.0]


def test_detects_groups_with_known_structure():
    """Hard points: weak is unsure; easy points: no hard-block signal; overlap: both."""
    rng = np.random.default_rng(0)
    n = 200
    truth = np.repeat([EASY, HARD, OVERLAP], n)
    p_pos = np.where(truth == HARD, rng.uniform(0.45, 0.55, 3 * n), rng.choice([0.05, 0.95], 3 * n))
    probs = np.c_[1 - p_pos, p_pos]
    # strong-side representation: easy block, hard block; hard directions shared by hard and overlap
    easy_block = np.where((truth != HARD)[:, None], rng.normal(size=(3 * n, 1)) * 0.1 + 1, 0)
    hard_block = np.where((truth != EASY)[:, None], rng.normal(size=(3 * n, 1)) * 0.1 + 1, 0)
    reps = np.c_[easy_block, hard_block]
    found = detect_overlap(probs, reps)
    scores = detection_scores(truth, found.groups)
    assert scores["hard_precision"] == 1.0 and scores["hard_recall"] == 1.0
    assert scores["overlap_f1"] > 0.95 and scores["easy_f1"] > 0.95
    assert found.density == pytest.approx(1 / 3, abs=0.02)


def test_detection_scores_by_hand():
    truth = np.array([0, 0, 1, 2, 2, 2])
    pred = np.array([0, 2, 1, 2, 2, 0])
    s = detection_scores(truth, pred)
    assert s["overlap_precision"] == pytest.approx(2 / 3)
    assert s["overlap_recall"] == pytest.approx(2 / 3)
    assert s["easy_precision"] == pytest.approx(1 / 2) and s["easy_recall"] == pytest.approx(1 / 2)
    assert s["hard_f1"] == 1.0
