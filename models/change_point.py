"""One change point in a 1-D signal by binary segmentation with an L2 cost.

With a single break, binary segmentation is exact: it picks the split that minimises
the summed within-segment squared deviations. Prefix sums make that O(n) and let a batch
of signals be segmented at once.
"""

from __future__ import annotations

import numpy as np


def single_change_point(signal: np.ndarray, min_size: int = 2) -> np.ndarray | int:
    """Index ``b`` such that ``signal[:b]`` and ``signal[b:]`` are the best two L2 segments.

    ``signal`` may be ``(n,)`` or a batch ``(..., n)``; the result has the batch shape.
    Ties go to the earliest split, as in ``ruptures.Binseg(model="l2", jump=1)``.
    """
    s = np.asarray(signal, dtype=np.float64)
    n = s.shape[-1]
    if n < 2 * min_size:
        raise ValueError(f"a change point needs at least {2 * min_size} points, got {n}")
    csum = np.cumsum(s, axis=-1)
    csum2 = np.cumsum(s * s, axis=-1)
    total, total2 = csum[..., -1:], csum2[..., -1:]
    b = np.arange(min_size, n - min_size + 1)  # candidate first index of the right segment
    left, left2 = csum[..., b - 1], csum2[..., b - 1]
    right, right2 = total - left, total2 - left2
    cost = (left2 - left**2 / b) + (right2 - right**2 / (n - b))
    best = b[np.argmin(cost, axis=-1)]
    return int(best) if np.ndim(best) == 0 else best


def threshold_at_change_point(values: np.ndarray, min_size: int = 2) -> float:
    """The largest value of the lower segment of ``sorted(values)``."""
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    return float(ordered[single_change_point(ordered, min_size) - 1])
