"""Evaluation of the weak-to-strong protocol: accuracy, AUROC, PGR and agreement."""

from __future__ import annotations

import math

import numpy as np

from models.synthetic import GROUPS

# Below this ceiling-minus-weak gap, PGR is a ratio of noise; it is still reported, flagged.
SMALL_GAP = 0.01
# The figures a table of runs leads with (keys of pgr_report's result).
HEADLINE_METRICS = ("acc_weak", "acc_ceiling", "acc_w2s", "pgr")


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(probs, axis=1) == labels)) if len(labels) else float("nan")


def roc_auc(probs: np.ndarray, labels: np.ndarray) -> float:
    """Binary AUROC of the positive class; macro one-vs-rest for more classes (rank formula, ties averaged)."""
    probs = np.asarray(probs, dtype=np.float64)
    classes = [1] if probs.shape[1] == 2 else list(range(probs.shape[1]))
    aucs = []
    for c in classes:
        positive = labels == c
        n_pos, n_neg = int(positive.sum()), int((~positive).sum())
        if n_pos == 0 or n_neg == 0:
            continue
        ranks = _average_ranks(probs[:, c])
        aucs.append((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    return float(np.mean(aucs)) if aucs else float("nan")


def _average_ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    sorted_x = x[order]
    # Tied values share the mean of their 1-based ranks.
    boundaries = np.flatnonzero(np.diff(sorted_x)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(x)]])
    for s, e in zip(starts, ends):
        ranks[order[s:e]] = (s + 1 + e) / 2.0
    return ranks


def pgr(weak: float, ceiling: float, w2s: float) -> float:
    """Performance gap recovered, ``(w2s − weak) / (ceiling − weak)``; NaN when the gap is zero."""
    gap = ceiling - weak
    return (w2s - weak) / gap if gap != 0 else float("nan")


def pgr_report(weak: dict, ceiling: dict, w2s: dict) -> dict:
    """PGR on accuracy and on AUROC, with the gaps and two flags.

    ``gap_too_small``: ``|ceiling − weak| < SMALL_GAP`` on accuracy, PGR is a ratio of noise.
    ``gap_negative`` / ``gap_auroc_negative``: the ceiling is clearly *below* the weak model
    (by ``SMALL_GAP`` or more) on accuracy / AUROC. PGR then is no share of a gap: its sign
    flips, so a student better than the weak model gets a negative PGR.
    """
    out = {}
    for metric in ("acc", "auroc"):
        gap = ceiling[metric] - weak[metric]
        out[f"pgr_{metric}" if metric != "acc" else "pgr"] = pgr(weak[metric], ceiling[metric], w2s[metric])
        out[f"gap_{metric}"] = gap
    out["gap_too_small"] = bool(not math.isfinite(out["gap_acc"]) or abs(out["gap_acc"]) < SMALL_GAP)
    out["gap_negative"] = bool(out["gap_acc"] <= -SMALL_GAP)
    out["gap_auroc_negative"] = bool(out["gap_auroc"] <= -SMALL_GAP)
    return out


def model_metrics(probs: np.ndarray, labels: np.ndarray, groups: np.ndarray | None) -> dict:
    """Accuracy and AUROC overall, and accuracy per ground-truth group where groups exist."""
    out = {"acc": accuracy(probs, labels), "auroc": roc_auc(probs, labels)}
    if groups is not None:
        for g, name in enumerate(GROUPS):
            mask = groups == g
            if mask.any():
                out[f"acc_{name}"] = accuracy(probs[mask], labels[mask])
    return out


def teacher_agreement(student: np.ndarray, teacher: np.ndarray, labels: np.ndarray) -> dict:
    """How often the student copies its teacher, split by whether the teacher was right.

    Agreement where the teacher is wrong is the imitation of its mistakes that W2S hopes to avoid.
    """
    s, t = np.argmax(student, axis=1), np.argmax(teacher, axis=1)
    right = t == labels
    agree = s == t
    return {
        "agreement": float(agree.mean()),
        "agreement_teacher_right": float(agree[right].mean()) if right.any() else float("nan"),
        "agreement_teacher_wrong": float(agree[~right].mean()) if (~right).any() else float("nan"),
    }


def mean_ci(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Mean and the half-width of its Student-t confidence interval (``nan`` width for one value)."""
    from scipy.stats import t

    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return float("nan"), float("nan")
    if len(v) == 1:
        return float(v[0]), float("nan")
    half = t.ppf(0.5 + confidence / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
    return float(v.mean()), float(half)


def accuracy_by_cell(
    probs: np.ndarray, labels: np.ndarray, cells: np.ndarray, n_cells: int, where: np.ndarray | None = None
) -> np.ndarray:
    """Accuracy of each cell's rows (optionally only rows ``where`` holds); ``nan`` for a cell without rows."""
    keep = np.ones(len(labels), dtype=bool) if where is None else where
    correct = (np.argmax(probs, axis=1) == labels) & keep
    total = np.bincount(cells[keep], minlength=n_cells).astype(np.float64)
    hits = np.bincount(cells, weights=correct.astype(np.float64), minlength=n_cells)
    return np.divide(hits, total, out=np.full(n_cells, np.nan), where=total > 0)
