"""The methods' losses and co-supervision steps against values computed by hand."""

import math

import numpy as np
import pytest
import torch

from models.csl import (
    Level, StudentFit, assign_teachers, class_blocks, co_supervise, consistency_denoise, constant_step_epochs,
    local_global_agreement, teacher_of_class,
)
from models.losses import (
    _greedy_quota_labels, adaptive_confidence_beta, adaptive_confidence_loss, aux_conf_alpha, aux_confidence_loss,
    balanced_hard_labels,
)
from models.labels import hard_labels


def test_aux_conf_alpha_follows_the_papers_smooth_warmup():
    total = 100  # warm-up: the first 20 steps
    assert aux_conf_alpha(0, total, 0.75) == 0.0
    assert aux_conf_alpha(10, total, 0.75) == pytest.approx(0.375)
    assert aux_conf_alpha(20, total, 0.75) == pytest.approx(0.75)  # warm-up end, no jump
    assert aux_conf_alpha(19, total, 0.75) == pytest.approx(0.75 * 19 / 20)
    assert aux_conf_alpha(total - 1, total, 0.75) == pytest.approx(0.75)


def test_binary_threshold_reproduces_the_weak_class_balance():
    probs = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.4, 0.6], [0.6, 0.4]])
    # Half positive: the two most positive points, whatever 0.5 would say.
    assert balanced_hard_labels(probs, torch.tensor([0.5, 0.5])).tolist() == [1, 0, 1, 0]
    # A quarter positive: point 2 (p = .6) is hardened to negative to keep the balance.
    assert balanced_hard_labels(probs, torch.tensor([0.75, 0.25])).tolist() == [1, 0, 0, 0]


def test_multiclass_quota_assignment_by_hand():
    probs = torch.tensor([[0.5, 0.4, 0.1], [0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])
    # (1, class 0, .6) and (2, class 2, .6) go first; class 0 is then full, so point 0
    # takes its next class. Plain argmax would give [0, 0, 2].
    labels = balanced_hard_labels(probs, torch.tensor([1 / 3, 1 / 3, 1 / 3]))
    assert labels.tolist() == [1, 0, 2]


def test_binary_threshold_is_burns_quantile_with_linear_interpolation():
    """Class-0 probabilities .05, .15, …, .95 and a weak positive share of .12: the quantile
    sits at position .12 · 9 = 1.08 between .15 and .25, at .158, so two points are hardened
    to positive, not round(.12 · 10) = 1."""
    p0 = 0.05 + 0.1 * torch.arange(10, dtype=torch.float64)
    probs = torch.stack([p0, 1 - p0], dim=1)
    shares = torch.tensor([0.88, 0.12], dtype=torch.float64)
    assert balanced_hard_labels(probs, shares).tolist() == [1, 1] + [0] * 8
    g = torch.Generator().manual_seed(0)
    for n in range(5, 40):
        p0 = torch.rand(n, generator=g)
        share = torch.rand((), generator=g)
        probs = torch.stack([p0, 1 - p0], dim=1)
        expected = (p0 < torch.quantile(p0, share)).long()
        assert torch.equal(balanced_hard_labels(probs, torch.stack([1 - share, share])), expected)


def test_quota_assignment_and_the_threshold_rank_points_alike_for_two_classes():
    """The multi-class quota rule, on two classes, hardens round(share · n) points to
    positive where the paper's quantile hardens ceil(share · (n − 1)): the same ranking."""
    g = torch.Generator().manual_seed(0)
    p1 = torch.rand(200, generator=g)
    probs = torch.stack([1 - p1, p1], dim=1)
    for share, quota, quantile in ((0.3, 60, 60), (0.1234, 25, 25), (0.0126, 3, 3), (0.0074, 1, 2)):
        shares = torch.tensor([1 - share, share])
        by_quota, by_quantile = _greedy_quota_labels(probs, shares), balanced_hard_labels(probs, shares)
        assert (int(by_quota.sum()), int(by_quantile.sum())) == (quota, quantile)
        assert bool((by_quota <= by_quantile).all())  # the fewer positives are among the more


def test_aux_confidence_loss_by_hand():
    logits = torch.tensor([[[0.0, 0.0], [math.log(3.0), 0.0]]])  # p1 = .5 and .25
    weak = torch.tensor([[0.2, 0.8], [0.6, 0.4]])  # positive share .6 -> one positive: point 0
    ce_weak = (-(0.2 * math.log(0.5) + 0.8 * math.log(0.5)) - (0.6 * math.log(0.75) + 0.4 * math.log(0.25))) / 2
    ce_self = (-math.log(0.5) - math.log(0.75)) / 2
    assert float(aux_confidence_loss(logits, weak, 0.5)) == pytest.approx(0.5 * ce_weak + 0.5 * ce_self)
    assert float(aux_confidence_loss(logits, weak, 0.0)) == pytest.approx(ce_weak)


def test_aux_confidence_loss_ignores_padding_rows():
    logits = torch.tensor([[[0.0, 0.0], [math.log(3.0), 0.0], [5.0, -5.0]]])
    weak = torch.tensor([[0.2, 0.8], [0.6, 0.4], [0.0, 1.0]])
    padded = aux_confidence_loss(logits, weak, 0.5, weights=torch.tensor([[1.0, 1.0, 0.0]]))
    assert float(padded) == pytest.approx(float(aux_confidence_loss(logits[:, :2], weak[:2], 0.5)))


def test_adaptive_beta_is_half_when_argmaxes_agree_and_below_otherwise():
    student = torch.tensor([[math.log(3.0), 0.0], [math.log(3.0), 0.0]])  # p = (.75, .25)
    teacher = torch.tensor([[2.0, 0.0], [0.0, 2.0]])  # agrees, disagrees
    beta = adaptive_confidence_beta(student, teacher, tau=1.0)
    # Disagreeing: exp(-log .75) / (exp(-log .75) + exp(-log .25)) = (4/3) / (4/3 + 4) = 1/4.
    assert beta.tolist() == pytest.approx([0.5, 0.25])
    g = torch.Generator().manual_seed(1)
    many = adaptive_confidence_beta(torch.randn(500, 5, generator=g), torch.randn(500, 5, generator=g), tau=0.3)
    assert float(many.max()) <= 0.5 + 1e-7


def test_adaptive_confidence_loss_by_hand():
    student = torch.tensor([[math.log(3.0), 0.0]])  # p_s = (.75, .25)
    teacher_probs = torch.tensor([[0.2, 0.8]])  # argmax disagrees: beta = 1/4
    kl = 0.2 * math.log(0.2 / 0.75) + 0.8 * math.log(0.8 / 0.25)
    expected = 0.75 * kl + 0.25 * -math.log(0.75)
    assert float(adaptive_confidence_loss(student, torch.log(teacher_probs), tau=1.0)) == pytest.approx(expected, rel=1e-5)
    # beta_scale 0 (the start of a ramp) leaves plain distillation.
    assert float(adaptive_confidence_loss(student, torch.log(teacher_probs), beta_scale=0.0)) == pytest.approx(kl, rel=1e-5)
    # Guo et al.'s default sharpness, 0.5: beta = sigmoid((-log .75 + log .25) / .5) = 1/10.
    assert float(adaptive_confidence_loss(student, torch.log(teacher_probs))) == pytest.approx(
        0.9 * kl + 0.1 * -math.log(0.75), rel=1e-5
    )


def test_hard_labels():
    assert hard_labels(np.array([[0.3, 0.7], [0.9, 0.1], [0.5, 0.5]])).tolist() == [[0, 1], [1, 0], [1, 0]]


def test_class_blocks_and_their_owners():
    blocks = class_blocks(8, 4)
    assert [b.tolist() for b in blocks] == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert teacher_of_class(class_blocks(5, 2), 5).tolist() == [0, 0, 0, 1, 1]
    with pytest.raises(ValueError, match="5 teachers"):
        class_blocks(4, 5)


def _onehot(labels, k):
    return np.eye(k)[labels]


def test_assignment_picks_the_teacher_of_the_students_class():
    owner = teacher_of_class(class_blocks(4, 2), 4)  # classes 0,1 -> teacher 0; 2,3 -> teacher 1
    student = np.array([[0.7, 0.1, 0.1, 0.1], [0.1, 0.1, 0.1, 0.7], [0.1, 0.1, 0.6, 0.2]])
    teachers = np.stack([_onehot([1, 0, 0], 4), _onehot([2, 3, 2], 4)])  # (2 teachers, 3 points, 4)
    targets, teacher = assign_teachers(student, teachers, owner)
    assert teacher.tolist() == [0, 1, 1]
    assert targets.argmax(1).tolist() == [1, 3, 2]


def test_consistency_denoising_keeps_the_r_share_with_lowest_loss():
    student = np.array([[0.6, 0.3, 0.1], [0.5, 0.4, 0.1], [0.1, 0.2, 0.7], [0.3, 0.6, 0.1]])
    targets = _onehot([1, 0, 0, 1], 3)
    # top-1: targets agree with the student on points 1 and 3 -> r = 1/2, keep 2 points;
    # losses -log(.3, .5, .1, .6): the lowest two are points 3 and 1.
    keep, r = consistency_denoise(student, targets, top_k=1)
    assert r == 0.5
    assert keep.tolist() == [False, True, False, True]
    # top-2 makes point 0 consistent too (r = 3/4): the three lowest losses are kept.
    keep, r = consistency_denoise(student, targets, top_k=2)
    assert (r, keep.tolist()) == (0.75, [True, True, False, True])


def test_denoising_ranks_soft_targets_by_their_argmax_class():
    """Liu & Alahi rank by the student's cross-entropy on the target's argmax class.
    Point 0's target (.55, 0, .45) costs -log .6 = .51 that way (soft: 1.32); point 1's
    (0, .9, .1) costs -log .3 = 1.20 (soft: 1.31). r = 1/2 keeps one point: point 0."""
    student = np.array([[0.6, 0.3, 0.1], [0.6, 0.3, 0.1]])
    targets = np.array([[0.55, 0.0, 0.45], [0.0, 0.9, 0.1]])
    keep, r = consistency_denoise(student, targets, top_k=1)
    assert r == 0.5 and keep.tolist() == [True, False]


def test_hard_co_supervision_keeps_the_points_the_argmax_ranking_keeps():
    """Soft specialists, hard=true: the second student learns from one-hot targets of the
    points the argmax ranking keeps (the example above, routed through co_supervise)."""
    k = 3
    generalist = np.array([[[0.6, 0.3, 0.1], [0.6, 0.3, 0.1]]])
    specialist = np.array([[[0.55, 0.0, 0.45], [0.0, 0.9, 0.1]]])
    levels = [
        Level(generalist, generalist, owner=np.zeros(k, dtype=np.int64)),
        Level(specialist, specialist, owner=np.zeros(k, dtype=np.int64)),
    ]
    calls = []

    def student(keep, targets, val_targets, epochs):
        calls.append((keep.tolist(), targets.tolist()))
        return StudentFit(generalist[0], generalist[0])

    co_supervise(levels, student, epochs=1, batch_size=None, top_k=1, hard=True)
    assert calls[1] == ([True, False], [[1.0, 0.0, 0.0]])


def test_local_global_agreement_and_constant_steps():
    assert local_global_agreement(_onehot([0, 1, 2], 3), _onehot([0, 2, 2], 3)).tolist() == [True, False, True]
    assert constant_step_epochs(10, n_full=1000, n_kept=500, batch_size=100) == 20
    assert constant_step_epochs(10, n_full=1000, n_kept=500, batch_size=None) == 10  # full batch: 1 step / epoch


def test_co_supervision_trains_each_level_on_its_assigned_and_kept_targets():
    k, n = 4, 6
    generalist = _onehot([0, 0, 2, 2, 1, 3], k)[None]
    specialists = np.stack([_onehot([1, 0, 1, 1, 1, 0], k), _onehot([3, 2, 3, 2, 2, 3], k)])
    levels = [
        Level(generalist, generalist[:, :2], owner=np.zeros(k, dtype=np.int64)),
        Level(specialists, specialists[:, :2], owner=teacher_of_class(class_blocks(k, 2), k)),
    ]
    calls = []

    def student(keep, targets, val_targets, epochs):
        calls.append((keep.copy(), targets.argmax(1).tolist(), epochs))
        # A student that predicts what it was taught on its kept points, class 0 elsewhere.
        probs = np.full((n, k), 0.1)
        taught = np.zeros(n, dtype=np.int64)
        taught[keep] = targets.argmax(1)
        probs[np.arange(n), taught] = 0.7
        return StudentFit(probs, probs[:2])

    out = co_supervise(levels, student, epochs=4, batch_size=2, top_k=1)
    assert calls[0][1] == [0, 0, 2, 2, 1, 3] and calls[0][0].all()
    # Level 2: the first student's classes [0,0,2,2,1,3] route points to teachers [0,0,1,1,0,1],
    # whose labels are [1,0,3,2,1,3]; top-1 consistency keeps points 1, 3, 4, 5 (r = 4/6).
    keep, taught, epochs = calls[1]
    assert keep.tolist() == [False, True, False, True, True, True]
    assert taught == [0, 2, 1, 3]
    assert epochs == 6  # 4 epochs of 3 batches = 12 steps = 6 epochs of 2 batches
    assert [lv.kept for lv in out.levels] == [6, 4]


def test_source_specialists_label_their_own_source_on_pool_and_val():
    k = 2
    generalist = _onehot([0, 0, 0], k)[None]
    # Teacher j labels every point j; pool and val differ in size.
    pool = np.stack([_onehot([0, 0, 0], k), _onehot([1, 1, 1], k)])
    val = np.stack([_onehot([0] * 5, k), _onehot([1] * 5, k)])
    levels = [
        Level(generalist, _onehot([0] * 5, k)[None], owner=np.zeros(k, dtype=np.int64)),
        Level(pool, val, pool_source=np.array([0, 1, 1]), val_source=np.array([1, 1, 0, 0, 1])),
    ]
    seen = []

    def student(keep, targets, val_targets, epochs):
        seen.append((targets.argmax(1).tolist(), val_targets.argmax(1).tolist()))
        probs = np.full((3, k), 0.5)
        return StudentFit(probs, np.full((5, k), 0.5))

    co_supervise(levels, student, epochs=1, batch_size=None, top_k=2)
    assert seen[1] == ([0, 1, 1], [1, 1, 0, 0, 1])
