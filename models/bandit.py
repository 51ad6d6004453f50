"""Data-source selection as a multi-armed bandit (Shin, Cooper & Sala, ICLR 2025).

Each arm is a data source with an unknown overlap density. A pull reveals ``n`` fresh
points, and each point is one Bernoulli observation of its source's density (overlap or
not), so arm statistics are kept in points by default: ``counts[k]`` is the number of
points drawn from arm ``k`` and ``t`` the number drawn in all. Counting pulls instead
(``unit="pulls"`` in the selection loop) treats an average over ``n`` points as a single
[0, 1] reward, which overstates its uncertainty ``sqrt(n)``-fold.

Policies, all pure functions of the statistics so far:

- ``ucb_select``: ``argmax_k  mean_k + bonus_k`` with the bonus of
  - ``ucb1``: textbook UCB1, ``sqrt(2 ln t / N_k)`` (the default);
  - ``paper``: the authors' code, ``sqrt(2 ln T) / N_k`` with ``T`` the horizon in rounds
    (not the current round) and ``N_k`` the pulls of arm ``k``: the selection loop always
    calls it with rounds and pulls, whatever it counts for the other policies;
- ``thompson_select``: a draw from each arm's Beta(1 + overlap, 1 + other) posterior;
- ``epsilon_greedy_select``: the best mean, or with probability ``epsilon`` a random arm.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Bonus = Literal["ucb1", "paper"]


def ucb_bonus(counts: np.ndarray, t: int, horizon: int, rule: Bonus = "ucb1") -> np.ndarray:
    counts = np.asarray(counts, dtype=np.float64)
    if rule == "ucb1":
        return np.sqrt(2.0 * np.log(max(t, 1)) / counts)
    if rule == "paper":
        return np.sqrt(2.0 * np.log(max(horizon, 1))) / counts
    raise ValueError(f"unknown UCB bonus {rule!r}; expected 'ucb1' or 'paper'")


def _first_unpulled(counts: np.ndarray) -> int | None:
    unpulled = np.flatnonzero(np.asarray(counts) == 0)
    return int(unpulled[0]) if len(unpulled) else None


def ucb_select(
    means: np.ndarray, counts: np.ndarray, t: int, horizon: int, rule: Bonus = "ucb1"
) -> int:
    """The arm to pull at time ``t`` (1-based); an arm never pulled is pulled first."""
    first = _first_unpulled(counts)
    if first is not None:
        return first
    return int(np.argmax(np.asarray(means, dtype=np.float64) + ucb_bonus(counts, t, horizon, rule)))


def thompson_select(successes: np.ndarray, counts: np.ndarray, rng: np.random.Generator) -> int:
    """Thompson sampling for Bernoulli arms with a uniform prior."""
    successes = np.asarray(successes, dtype=np.float64)
    failures = np.asarray(counts, dtype=np.float64) - successes
    return int(np.argmax(rng.beta(1.0 + successes, 1.0 + failures)))


def epsilon_greedy_select(
    means: np.ndarray, counts: np.ndarray, epsilon: float, rng: np.random.Generator
) -> int:
    """Each arm once, then the best mean, except with probability ``epsilon`` a uniform arm."""
    first = _first_unpulled(counts)
    if first is not None:
        return first
    if rng.random() < epsilon:
        return int(rng.integers(len(counts)))
    return int(np.argmax(means))
