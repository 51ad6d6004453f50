"""Overlap detection (Shin, Cooper & Sala, ICLR 2025), with the metrics that grade it.

1. Weak confidence ``c``; one change point on sorted ``c`` gives ``tau1``;
   ``c <= tau1`` is HARD (the weak model has no signal there).
2. ``z = h / ||h||`` on the strong side; for every other point the alignment
   ``a = max_{j in HARD} |<z, z_j>|``; one change point on sorted ``a`` gives ``tau2``;
   ``a >= tau2`` is OVERLAP, the rest EASY.
No other hyper-parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.change_point import threshold_at_change_point
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


def detect_overlap(
    weak_probs: np.ndarray,
    representations: np.ndarray,
    min_size: int = 2,
) -> OverlapDetection:
    """The paper's two-change-point detector on one pool of points."""
    confidence = weak_confidence(weak_probs)
    tau1 = threshold_at_change_point(confidence, min_size)
    hard = confidence <= tau1
    z = unit_rows(representations)
    alignment = max_alignment(z[~hard], z[hard])
    groups = np.full(len(confidence), HARD, dtype=np.int64)
    tau2 = float("nan")
    if len(alignment) >= 2 * min_size:
        tau2 = threshold_at_change_point(alignment, min_size)
        # The change point splits sorted values into [low | high]: high alignment is OVERLAP.
        groups[~hard] = np.where(alignment > tau2, OVERLAP, EASY)
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
