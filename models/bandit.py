"""Data-source selection as a multi-armed bandit (Shin, Cooper & Sala, ICLR 2025).

Each arm is a data source with an unknown overlap density. ``ucb_select`` picks
``argmax_k  mean_k + bonus_k``. Two bonuses are offered:

- ``ucb1``: textbook UCB1, ``sqrt(2 ln t / N_k)`` (the default);
- ``paper``: the authors' code, ``sqrt(2 ln T) / N_k`` (horizon ``T``, not the round).
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


def ucb_select(
    means: np.ndarray, counts: np.ndarray, t: int, horizon: int, rule: Bonus = "ucb1"
) -> int:
    """The arm to pull at round ``t`` (1-based); an arm never pulled is pulled first."""
    counts = np.asarray(counts)
    unpulled = np.flatnonzero(counts == 0)
    if len(unpulled):
        return int(unpulled[0])
    return int(np.argmax(np.asarray(means, dtype=np.float64) + ucb_bonus(counts, t, horizon, rule)))
