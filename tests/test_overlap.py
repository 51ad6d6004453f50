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
    # Confident points spread a little: with one shared confidence value, the paper's rule
    # (c <= the first value after the break) would take all of them for HARD.
    confident = 0.5 + rng.choice([-1, 1], 3 * n) * rng.uniform(0.4, 0.45, 3 * n)
    p_pos = np.where(truth == HARD, rng.uniform(0.45, 0.55, 3 * n), confident)
    probs = np.c_[1 - p_pos, p_pos]
    # strong-side representation: easy block, hard block; hard directions shared by hard and overlap
    easy_block = np.where((truth != HARD)[:, None], rng.normal(size=(3 * n, 1)) * 0.1 + 1, 0)
    hard_block = np.where((truth != EASY)[:, None], rng.normal(size=(3 * n, 1)) * 0.1 + 1, 0)
    reps = np.c_[easy_block, hard_block]
    found = detect_overlap(probs, reps)
    scores = detection_scores(truth, found.groups)
    # The authors' threshold is the first confidence after the break: one confident point is HARD too.
    assert (truth[found.groups == HARD] != HARD).sum() == 1 and scores["hard_recall"] == 1.0
    assert scores["overlap_f1"] > 0.95 and scores["easy_f1"] > 0.95
    assert found.density == pytest.approx(1 / 3, abs=0.02)


def test_paper_detector_puts_the_first_point_after_the_break_in_hard():
    """Confidences 0.00 … 0.04 then 0.80 … 0.89: the change point is at index 5 and the
    authors' threshold is sorted(c)[5] = 0.80, so six points are HARD, not five."""
    confidence = np.r_[np.arange(5) * 0.01, 0.8 + np.arange(10) * 0.01]
    p_pos = 0.5 + confidence / 2
    reps = np.random.default_rng(0).normal(size=(15, 4))
    found = detect_overlap(np.c_[1 - p_pos, p_pos], reps, "paper")
    assert found.tau_confidence == pytest.approx(0.8)
    assert np.flatnonzero(found.groups == HARD).tolist() == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize("seed", range(6))
def test_paper_detector_is_the_authors_ruptures_computation(seed):
    """Both cuts recomputed with ruptures.Binseg at its defaults (as the authors' script):
    HARD is c <= sorted(c)[b1], OVERLAP is a >= sorted(a)[b2]."""
    import ruptures

    rng = np.random.default_rng(seed)
    n = int(rng.integers(40, 200))
    p_pos = np.where(rng.random(n) < 0.3, rng.uniform(0.4, 0.6, n), rng.uniform(0.0, 1.0, n))
    probs = np.c_[1 - p_pos, p_pos]
    reps = rng.normal(size=(n, 6))

    def first_after_break(values):
        ordered = np.sort(values)
        return ordered[ruptures.Binseg(model="l2").fit(ordered).predict(n_bkps=1)[0]]

    c = weak_confidence(probs)
    hard = c <= first_after_break(c)
    z = reps / np.linalg.norm(reps, axis=1, keepdims=True)
    a = max_alignment(z[~hard], z[hard])
    expected = np.full(n, HARD)
    expected[~hard] = np.where(a >= first_after_break(a), OVERLAP, EASY)
    assert detect_overlap(probs, reps, "paper").groups.tolist() == expected.tolist()


def test_paper_detector_needs_seven_points_for_a_cut():
    """ruptures with jump=5 and min_size=2 segments nothing shorter than 7 points."""
    probs = np.c_[np.linspace(0.5, 1.0, 6), np.linspace(0.5, 0.0, 6)]
    assert detect_overlap(probs, np.eye(6), "paper").groups.tolist() == [HARD] * 6


def test_detection_scores_by_hand():
    truth = np.array([0, 0, 1, 2, 2, 2])
    pred = np.array([0, 2, 1, 2, 2, 0])
    s = detection_scores(truth, pred)
    assert s["overlap_precision"] == pytest.approx(2 / 3)
    assert s["overlap_recall"] == pytest.approx(2 / 3)
    assert s["easy_precision"] == pytest.approx(1 / 2) and s["easy_recall"] == pytest.approx(1 / 2)
    assert s["hard_f1"] == 1.0


# --- the mixture cut and the mixture_energy detector -------------------------------------

from models.change_point import threshold_after_change_point  # noqa: E402
from models.mixture import mixture_threshold  # noqa: E402
from models.overlap import hard_span_energy  # noqa: E402


def test_mixture_cut_separates_a_spike_from_a_wide_spread_where_two_means_cannot():
    rng = np.random.default_rng(0)
    spike = rng.normal(0.01, 0.002, 300)  # weak confidence on hard-only points
    spread = rng.uniform(0.05, 1.0, 600)  # everywhere else
    values = np.r_[spike, spread]
    cut = mixture_threshold(values)
    assert spike.max() <= cut < 0.05  # exactly the spike is below the cut
    # The change point (2-means) puts the boundary between the group means, deep in the spread.
    assert threshold_after_change_point(values, jump=1) > 0.2


def test_mixture_cut_edge_cases():
    assert mixture_threshold(np.full(10, 0.3)) == 0.3  # one group: everything is "lower"
    with pytest.raises(ValueError, match="at least 4 values"):
        mixture_threshold(np.array([0.1, 0.2, 0.3]))
    # two well-separated equal groups: the cut lies between them
    values = np.r_[np.linspace(0, 0.1, 50), np.linspace(0.9, 1.0, 50)]
    assert 0.1 <= mixture_threshold(values) < 0.9


def test_hard_span_energy_is_the_mean_squared_cosine():
    z = np.array([[1.0, 0.0], [0.0, 1.0], [np.sqrt(0.5), np.sqrt(0.5)]])
    ref = np.array([[0.0, 1.0], [0.0, -1.0], [1.0, 0.0]])
    expected = [np.mean((ref @ row) ** 2) for row in z]
    np.testing.assert_allclose(hard_span_energy(z, ref), expected)
    assert hard_span_energy(z, np.empty((0, 2))).tolist() == [0.0, 0.0, 0.0]


def _mixture_like_pool(rng, n=300, d=10):
    """Hard points: the weak model outputs its prior (identical confidence), hard block only;
    easy points: easy block only; overlap: both blocks. Confident points' confidence spreads
    over (0, 1] with many near 0, the case where the paper's 2-means cut takes them for HARD."""
    truth = np.repeat([EASY, HARD, OVERLAP], n)
    margin = rng.uniform(0.0, 1.0, 3 * n) ** 2
    p_pos = np.where(truth == HARD, 0.5, 0.5 + 0.5 * margin * rng.choice([-1, 1], 3 * n))
    easy = rng.normal(size=(3 * n, d)) * (truth != HARD)[:, None]
    hard = rng.normal(size=(3 * n, d)) * (truth != EASY)[:, None]
    return truth, np.c_[1 - p_pos, p_pos], np.c_[easy, hard]


def test_mixture_energy_beats_the_paper_where_its_confidence_cut_fails():
    rng = np.random.default_rng(1)
    truth, probs, reps = _mixture_like_pool(rng)
    ours = detection_scores(truth, detect_overlap(probs, reps, "mixture_energy").groups)
    paper = detection_scores(truth, detect_overlap(probs, reps, "paper").groups)
    assert ours["hard_precision"] > 0.9 and ours["hard_recall"] == 1.0
    assert ours["overlap_f1"] > 0.95
    assert paper["hard_precision"] < 0.8  # low-confidence easy/overlap points called HARD
    assert paper["overlap_f1"] < ours["overlap_f1"] - 0.2


def test_unknown_detector_is_refused_and_tiny_pools_are_all_hard():
    with pytest.raises(ValueError, match="unknown overlap detector 'nope'"):
        detect_overlap(np.full((5, 2), 0.5), np.zeros((5, 3)), "nope")
    found = detect_overlap(np.full((3, 2), 0.5), np.ones((3, 2)), "mixture_energy")
    assert found.groups.tolist() == [HARD] * 3 and found.density == 0.0
