"""A cut between two groups of 1-D values by a two-component Gaussian mixture.

The paper's change point on sorted values is 1-D 2-means: it puts the boundary half-way
between the two group means, which misplaces it when one group is tight and the other
wide. Weak confidence is exactly that case: on hard-only points it is a spike near 0, on
the rest it spreads over [0, 1]. A mixture with one variance per component puts the
boundary where the two fitted densities cross.
"""

from __future__ import annotations

import numpy as np

from models.change_point import single_change_point


def mixture_threshold(values: np.ndarray, min_size: int = 2, max_iter: int = 200, tol: float = 1e-7) -> float:
    """The largest value of the lower component, or ``-inf`` when no value belongs to it.

    EM starts from the change-point split, so the mixture refines the paper's cut rather
    than searching from scratch; a component that collapses to nothing falls back to it.
    """
    v = np.sort(np.asarray(values, dtype=np.float64))
    if len(v) < 2 * min_size:
        raise ValueError(f"a mixture cut needs at least {2 * min_size} values, got {len(v)}")
    if v[0] == v[-1]:
        return float(v[-1])  # one group only
    split = single_change_point(v, min_size)
    low = (np.arange(len(v)) < split).astype(np.float64)  # responsibility of the lower component
    floor = 1e-6 * v.var()  # a spike of identical values would otherwise have zero variance
    mean_high = float(v[split:].mean())
    for _ in range(max_iter):
        n_low, n_high = low.sum(), len(v) - low.sum()
        if n_low < 1e-9 or n_high < 1e-9:
            return float(v[split - 1])
        mean_low, mean_high = (low @ v) / n_low, ((1 - low) @ v) / n_high
        var_low = max((low @ (v - mean_low) ** 2) / n_low, floor)
        var_high = max(((1 - low) @ (v - mean_high) ** 2) / n_high, floor)
        log_ratio = (
            np.log(n_high / n_low)
            - 0.5 * np.log(var_high / var_low)
            - 0.5 * (v - mean_high) ** 2 / var_high
            + 0.5 * (v - mean_low) ** 2 / var_low
        )
        updated = 0.5 * (1.0 - np.tanh(0.5 * log_ratio))  # sigmoid(-log_ratio), overflow-free
        converged = np.max(np.abs(updated - low)) < tol
        low = updated
        if converged:
            break
    # A wide upper component can also win far below a tight lower one; only values under
    # the upper mean are candidates, so the cut stays a single threshold.
    lower = (low > 0.5) & (v < mean_high)
    return float(v[lower].max()) if lower.any() else float("-inf")
