"""The source-selection loop: pull a source, weak-label, re-detect, update densities.

The weak model is fixed, so weak labels of every pool point can be computed once; a
"pull" only reveals the next unseen points of that source. Detection reruns on all
that was collected, so the HARD reference set accumulates across rounds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from models.bandit import epsilon_greedy_select, thompson_select, ucb_select
from models.overlap import detect_overlap
from models.synthetic import OVERLAP

Policy = Literal["ucb1", "paper_ucb", "thompson", "epsilon_greedy", "random", "oracle", "all"]
# The bandit settings each policy reads; the others cannot change its result.
# paper_ucb is the authors' rule, which counts rounds and pulls whatever ``unit`` says.
READS = {"ucb1": {"unit"}, "epsilon_greedy": {"unit", "epsilon"}}
Unit = Literal["points", "pulls"]


@dataclass(frozen=True)
class SourcePool:
    """One source's pool in draw order: weak probabilities and strong representations."""

    weak_probs: np.ndarray
    representations: np.ndarray
    true_density: float | None = None  # known for synthetic sources only

    def __len__(self) -> int:
        return len(self.weak_probs)


@dataclass
class SelectionResult:
    """Which points of which source were bought, with the per-round trace."""

    taken: list[np.ndarray]  # per source: indices into its pool, in pull order
    groups: list[np.ndarray]  # per source: detected group of each taken point (last round)
    trace: list[dict] = field(default_factory=list)


def select_sources(
    pools: list[SourcePool],
    policy: Policy,
    rounds: int,
    pull_size: int,
    seed: int,
    detector: str = "paper",
    unit: Unit = "points",
    epsilon: float = 0.1,
) -> SelectionResult:
    """Run ``rounds`` pulls of ``pull_size`` fresh points with ``policy`` (``all`` takes every pool whole).

    ``unit`` is what ``ucb1`` and ``epsilon_greedy`` count (see :mod:`models.bandit`);
    ``paper_ucb`` always counts as the authors do, ``T`` rounds and ``N_k`` pulls.
    ``epsilon`` is epsilon-greedy's exploration rate.
    """
    k = len(pools)
    if k == 0:
        raise ValueError("source selection needs at least one source")
    if policy == "all":
        taken = [np.arange(len(p)) for p in pools]
        return SelectionResult(taken=taken, groups=_detect(pools, taken, detector), trace=[])
    for i, p in enumerate(pools):
        if rounds * pull_size > len(p):
            raise ValueError(
                f"selection budget rounds*pull_size={rounds * pull_size} exceeds the pool of source {i} ({len(p)} points)"
            )
    if policy == "oracle" and any(p.true_density is None for p in pools):
        raise ValueError("the oracle policy needs sources with known overlap densities")

    rng = np.random.default_rng(seed)
    scale = pull_size if unit == "points" else 1
    pulled = np.zeros(k, dtype=np.int64)  # pulls of each arm
    estimates, overlap_found = np.zeros(k), np.zeros(k)
    true = np.array([p.true_density if p.true_density is not None else np.nan for p in pools])
    best_true = np.nanmax(true) if np.isfinite(true).any() else np.nan
    regret = 0.0
    groups: list[np.ndarray] = [np.empty(0, dtype=np.int64)] * k
    trace = []
    for t in range(1, rounds + 1):
        counts, time, horizon = pulled * scale, t * scale, rounds * scale
        if policy == "ucb1":
            arm = ucb_select(estimates, counts, time, horizon, "ucb1")
        elif policy == "paper_ucb":
            arm = ucb_select(estimates, pulled, t, rounds, "paper")
        elif policy == "thompson":
            arm = thompson_select(overlap_found, pulled * pull_size, rng)  # a Beta posterior counts points
        elif policy == "epsilon_greedy":
            arm = epsilon_greedy_select(estimates, counts, epsilon, rng)
        elif policy == "random":
            arm = int(rng.integers(k))
        elif policy == "oracle":
            arm = int(np.nanargmax(true))
        else:
            raise ValueError(f"unknown selection policy {policy!r}")
        pulled[arm] += 1
        taken = [np.arange(pulled[i] * pull_size) for i in range(k)]
        groups = _detect(pools, taken, detector)
        overlap_found = np.array([np.sum(g == OVERLAP) for g in groups], dtype=np.float64)
        # An arm never pulled has no estimate (policies pull such arms first, so never read it).
        estimates = np.divide(overlap_found, pulled * pull_size, out=np.full(k, np.nan), where=pulled > 0)
        # Regret in expected overlap points: what the best arm would have yielded this pull.
        regret += pull_size * (best_true - true[arm]) if np.isfinite(best_true) else np.nan
        trace.append(
            {
                "round": t,
                "arm": arm,
                "estimated_density": estimates.tolist(),
                "true_density": true.tolist(),
                "cumulative_regret": regret,
                "detected_overlap": int(overlap_found.sum()),
            }
        )
    taken = [np.arange(pulled[i] * pull_size) for i in range(k)]
    return SelectionResult(taken=taken, groups=groups, trace=trace)


def collected_after(arms: np.ndarray, n_sources: int, pull_size: int) -> np.ndarray:
    """Points taken from each source after each round, ``(rounds, n_sources)``, from the arm sequence:
    a pull always reveals a source's next ``pull_size`` unseen points, so the arms say it all."""
    pulls = np.cumsum(np.eye(n_sources, dtype=np.int64)[np.asarray(arms)], axis=0)
    return pulls * pull_size


def _detect(pools: list[SourcePool], taken: list[np.ndarray], detector: str) -> list[np.ndarray]:
    """Detect on everything collected so far, jointly, and split the groups back per source."""
    sizes = [len(t) for t in taken]
    probs = np.concatenate([p.weak_probs[t] for p, t in zip(pools, taken)])
    reps = np.concatenate([p.representations[t] for p, t in zip(pools, taken)])
    groups = detect_overlap(probs, reps, detector).groups
    return np.split(groups, np.cumsum(sizes)[:-1])
