"""One change point in a 1-D signal by binary segmentation with an L2 cost.

With a single break, binary segmentation is exact: it picks the split that minimises
the summed within-segment squared deviations. Prefix sums make that O(n) and let a batch
of signals be segmented at once. The candidates and the tie rule are ``ruptures.Binseg``'s:
a split ``b`` (the first index of the right segment) is a multiple of ``jump`` with at
least ``min_size`` points on each side, and of equally good splits the last one wins
(``ruptures`` takes the ``max`` of ``(gain, b)`` pairs).
"""

from __future__ import annotations

import numpy as np


TIE_TOLERANCE = 1e-10


def split_candidates(n: int, min_size: int = 2, jump: int = 1) -> np.ndarray:
    """The splits ``ruptures.Binseg(min_size=min_size, jump=jump)`` considers on ``n`` points."""
    b = np.arange(min_size, n - min_size + 1)
    return b[b % jump == 0]


def single_change_point(signal: np.ndarray, min_size: int = 2, jump: int = 1) -> np.ndarray | int:
    """Index ``b`` such that ``signal[:b]`` and ``signal[b:]`` are the best two L2 segments.

    ``signal`` may be ``(n,)`` or a batch ``(..., n)``; the result has the batch shape.
    Equals ``ruptures.Binseg(model="l2", min_size=min_size, jump=jump)``'s single break,
    ties included (the last of equally good splits).
    """
    s = np.asarray(signal, dtype=np.float64)
    s = s - s[..., :1]  # the cost is shift-invariant; a constant signal then costs exactly 0 everywhere
    n = s.shape[-1]
    b = split_candidates(n, min_size, jump)
    if len(b) == 0:
        raise ValueError(f"a change point with min_size={min_size}, jump={jump} needs more than {n} points")
    csum = np.cumsum(s, axis=-1)
    csum2 = np.cumsum(s * s, axis=-1)
    total, total2 = csum[..., -1:], csum2[..., -1:]
    left, left2 = csum[..., b - 1], csum2[..., b - 1]
    right, right2 = total - left, total2 - left2
    cost = (left2 - left**2 / b) + (right2 - right**2 / (n - b))
    # A tie is a cost equal to the best one up to the rounding of this formula (relative to
    # the signal's energy); of tied splits the last wins.
    tied = cost <= cost.min(axis=-1, keepdims=True) + TIE_TOLERANCE * total2
    last_best = len(b) - 1 - np.argmax(tied[..., ::-1], axis=-1)
    best = b[last_best]
    return int(best) if np.ndim(best) == 0 else best


def threshold_after_change_point(values: np.ndarray, min_size: int = 2, jump: int = 5) -> float:
    """``sorted(values)[b]``, the first value after the change point of the sorted values:
    Shin et al.'s threshold (their script: ``ruptures.Binseg`` with its default ``jump=5``)."""
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    return float(ordered[single_change_point(ordered, min_size, jump)])
