"""Overlap detection, with the metrics that grade it.

``paper`` (Shin, Cooper & Sala, ICLR 2025), as their script computes it:

1. Weak confidence ``c``; one change point ``b`` on sorted ``c`` (``ruptures.Binseg``, L2
   cost, its defaults ``min_size=2, jump=5``) gives ``tau1 = sorted(c)[b]``, the first value
   after the break; ``c <= tau1`` is HARD (the weak model has no signal there).
2. ``z = h / ||h||`` on the strong side; for every other point the alignment
   ``a = max_{j in HARD} |<z, z_j>|``; the same change point on sorted ``a`` gives
   ``tau2 = sorted(a)[b]``; ``a >= tau2`` is OVERLAP, the rest EASY.

``mixture_energy`` keeps the two steps and replaces their two weak links:

- Both cuts come from a two-Gaussian mixture (:func:`mixture_threshold`) instead of a
  change point, which is 2-means and splits a tight spike from a wide spread in the
  wrong place: on the synthetic mixture it labels ~1/4 of confident points HARD.
- The alignment is the *mean* squared cosine to the HARD set (the share of a point's
  energy in the span of HARD representations) instead of the *maximum*: a maximum over
  hundreds of references is set by the few non-hard points that slipped into HARD, and
  by norm (a point with fewer active features has larger cosines), not by shared
  hard-side structure.
No hyper-parameters either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from models.change_point import split_candidates, threshold_after_change_point
from models.mixture import mixture_threshold
from models.synthetic import EASY, GROUPS, HARD, OVERLAP


def weak_confidence(probs: np.ndarray) -> np.ndarray:
    """Confidence in [0, 1]: ``2·|p − 0.5|`` for two classes, max-probability rescaled otherwise."""
    probs = np.asarray(probs, dtype=np.float64)
    n_classes = probs.shape[1]
    chance = 1.0 / n_classes
    return (probs.max(axis=1) - chance) / (1.0 - chance)


def max_alignment(z: np.ndarray, reference: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """``max_j |<z_i, reference_j>|`` for each row of ``z``, in chunks to bound memory."""
    if len(reference) == 0:
        return np.zeros(len(z))
    out = np.empty(len(z))
    for start in range(0, len(z), chunk):
        out[start : start + chunk] = np.abs(z[start : start + chunk] @ reference.T).max(axis=1)
    return out


def hard_span_energy(z: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``mean_j <z_i, reference_j>^2`` for each row of ``z``, via the references' second moment."""
    if len(reference) == 0:
        return np.zeros(len(z))
    moment = reference.T @ reference / len(reference)
    return np.einsum("nd,de,ne->n", z, moment, z)


def unit_rows(h: np.ndarray) -> np.ndarray:
    h = np.asarray(h, dtype=np.float64)
    norm = np.linalg.norm(h, axis=1, keepdims=True)
    return h / np.where(norm > 0, norm, 1.0)


@dataclass(frozen=True)
class OverlapDetection:
    groups: np.ndarray  # EASY / HARD / OVERLAP per point
    tau_confidence: float
    tau_alignment: float

    @property
    def density(self) -> float:
        return float(np.mean(self.groups == OVERLAP)) if len(self.groups) else 0.0


def detect_overlap_paper(weak_probs: np.ndarray, representations: np.ndarray) -> OverlapDetection:
    """The paper's two-change-point detector on one pool of points."""
    return _two_cuts(weak_probs, unit_rows(representations), PAPER_CUT, max_alignment)


def detect_overlap_mixture(weak_probs: np.ndarray, representations: np.ndarray) -> OverlapDetection:
    """Mixture cuts and HARD-span energy (see the module docstring for why)."""
    return _two_cuts(weak_probs, unit_rows(representations), MIXTURE_CUT, hard_span_energy)


DETECTORS = {"paper": detect_overlap_paper, "mixture_energy": detect_overlap_mixture}


def detect_overlap(weak_probs: np.ndarray, representations: np.ndarray, detector: str = "paper") -> OverlapDetection:
    if detector not in DETECTORS:
        raise ValueError(f"unknown overlap detector {detector!r}; expected one of {sorted(DETECTORS)}")
    return DETECTORS[detector](weak_probs, representations)


MIN_SIZE = 2  # fewest points on each side of a cut (ruptures' default min_size)
PAPER_JUMP = 5  # ruptures.Binseg's default subsampling, which the authors' script keeps


@dataclass(frozen=True)
class Cut:
    """How a detector turns a 1-D set of values into a threshold.

    ``threshold(values)`` gives ``tau``; HARD is ``c <= tau1``; OVERLAP is ``a >= tau2`` when
    ``overlap_inclusive`` (the threshold is the first value of the upper side) and
    ``a > tau2`` otherwise (it is the last value of the lower side). ``min_points``: fewer
    values cannot be cut.
    """

    threshold: Callable[[np.ndarray], float]
    overlap_inclusive: bool
    min_points: int


PAPER_CUT = Cut(
    threshold=lambda v: threshold_after_change_point(v, MIN_SIZE, PAPER_JUMP),
    overlap_inclusive=True,
    # The fewest points with a candidate split; below it ruptures refuses to segment.
    min_points=next(n for n in range(2, 4 * PAPER_JUMP) if len(split_candidates(n, MIN_SIZE, PAPER_JUMP))),
)
MIXTURE_CUT = Cut(threshold=lambda v: mixture_threshold(v, MIN_SIZE), overlap_inclusive=False, min_points=2 * MIN_SIZE)


def _two_cuts(weak_probs, z, cut: Cut, alignment_to) -> OverlapDetection:
    """Step 1: HARD where weak confidence is at or under the first cut. Step 2: among the
    rest, OVERLAP where alignment with the HARD points is above the second cut. Too few
    points for a cut: all HARD (step 1), all EASY (step 2)."""
    confidence = weak_confidence(weak_probs)
    groups = np.full(len(confidence), HARD, dtype=np.int64)
    if len(confidence) < cut.min_points:
        return OverlapDetection(groups=groups, tau_confidence=float("nan"), tau_alignment=float("nan"))
    tau1 = cut.threshold(confidence)
    hard = confidence <= tau1
    alignment = alignment_to(z[~hard], z[hard])
    tau2 = float("nan")
    if len(alignment) >= cut.min_points:
        tau2 = cut.threshold(alignment)
        overlap = alignment >= tau2 if cut.overlap_inclusive else alignment > tau2
        groups[~hard] = np.where(overlap, OVERLAP, EASY)
    else:
        groups[~hard] = EASY
    return OverlapDetection(groups=groups, tau_confidence=tau1, tau_alignment=tau2)


def detection_scores(true_groups: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Precision, recall and F1 of each detected group against the ground truth."""
    scores: dict[str, float] = {}
    for g, name in enumerate(GROUPS):
        tp = float(np.sum((predicted == g) & (true_groups == g)))
        n_pred, n_true = float(np.sum(predicted == g)), float(np.sum(true_groups == g))
        precision = tp / n_pred if n_pred else 0.0
        recall = tp / n_true if n_true else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        scores.update({f"{name}_precision": precision, f"{name}_recall": recall, f"{name}_f1": f1})
    return scores
