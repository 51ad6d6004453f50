"""The easy / hard / overlap mixture of Shin, Cooper & Sala (ICLR 2025).

Every point is ``x = [x_easy, x_hard]`` drawn around ``±theta`` (sign by label). Easy-only
points have their hard block zeroed, hard-only points their easy block; overlap points
keep both. The weak view is the easy block alone, so a weak model can only use easy
patterns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GROUPS = ("easy", "hard", "overlap")
EASY, HARD, OVERLAP = range(3)


@dataclass(frozen=True)
class Mixture:
    """Points of one draw: strong view ``x``, weak view ``x_weak``, ``label``, ``group``."""

    x: np.ndarray
    x_weak: np.ndarray
    label: np.ndarray
    group: np.ndarray | None  # None where a task has no easy / hard / overlap ground truth

    def __len__(self) -> int:
        return len(self.label)


def draw_theta(rng: np.random.Generator, d_easy: int, d_hard: int) -> np.ndarray:
    """The class mean direction, drawn once per task: ``theta ~ U[0, 1]^(d_easy + d_hard)``."""
    return rng.uniform(0.0, 1.0, size=d_easy + d_hard)


def sample_mixture(
    rng: np.random.Generator,
    theta: np.ndarray,
    d_easy: int,
    counts: dict[str, int],
    noise_var: float,
) -> Mixture:
    """Draw ``counts[g]`` points of each group ``g``, shuffled, from ``N(±theta, noise_var·I)``."""
    if d_easy <= 0 or d_easy >= len(theta):
        raise ValueError(f"d_easy must lie in (0, {len(theta)}), got {d_easy}")
    group = np.concatenate([np.full(int(counts.get(g, 0)), i) for i, g in enumerate(GROUPS)])
    group = rng.permutation(group).astype(np.int64)
    n = len(group)
    label = rng.integers(0, 2, size=n).astype(np.int64)
    sign = (2 * label - 1)[:, None]
    x = sign * theta[None, :] + rng.normal(0.0, np.sqrt(noise_var), size=(n, len(theta)))
    x[group == EASY, d_easy:] = 0.0
    x[group == HARD, :d_easy] = 0.0
    x = x.astype(np.float32)
    return Mixture(x=x, x_weak=x[:, :d_easy].copy(), label=label, group=group)


def overlap_density(counts: dict[str, int]) -> float:
    """``n_overlap / (n_easy + n_hard + n_overlap)``."""
    total = sum(int(counts.get(g, 0)) for g in GROUPS)
    return int(counts.get("overlap", 0)) / total if total else 0.0


def scale_counts(counts: dict[str, int], factor: float) -> dict[str, int]:
    """Group counts of a split drawn ``factor`` times the size of a source's unit draw."""
    return {g: int(round(int(counts.get(g, 0)) * factor)) for g in GROUPS}
