"""Stage ``select_grid``: one selection policy run on every seed's sources, round by round."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np

from models.selection import SourcePool, collected_after, select_sources
from models.synthetic import OVERLAP
from tasks.data import load_array, load_grid_split, save_array
from tasks.manifest import Manifest
from tasks.stage import StageOutput, cached_stage

if TYPE_CHECKING:
    from flows.config import BanditConfig


def source_rows(split, cell: int, n_sources: int) -> list[np.ndarray]:
    """Row indices of each source of one cell, in draw order (a pull takes the next ones)."""
    return [np.flatnonzero((split.cell == cell) & (split.source == k)) for k in range(n_sources)]


@cached_stage
def select_grid(
    out: StageOutput,
    policy: str,
    bandit: BanditConfig,
    rounds: int,
    pull_size: int,
    detector: str,
    data: Manifest,
    weak: Manifest,
) -> None:
    pool = load_grid_split(data, "w2s_train")
    probs = load_array(weak, "pool_probs")
    cells = json.loads(data.file("cells.json").read_text())
    n_sources = len(cells[0]["true_density"])
    arms, estimates, regret, true_overlap = [], [], [], []
    for cell in cells:
        rows = source_rows(pool, cell["cell"], n_sources)
        pools = [SourcePool(probs[r], pool.x[r], true_density=d) for r, d in zip(rows, cell["true_density"])]
        result = select_sources(
            pools, policy, rounds, pull_size, seed=cell["seed"], detector=detector, unit=bandit.unit, epsilon=bandit.epsilon
        )
        arms.append([row["arm"] for row in result.trace])
        estimates.append([row["estimated_density"] for row in result.trace])
        regret.append([row["cumulative_regret"] for row in result.trace])
        # Ground truth of what was bought: overlap points among the first `taken` of each source.
        overlap_before = [np.r_[0, np.cumsum(pool.group[r] == OVERLAP)] for r in rows]
        taken = collected_after(np.array(arms[-1]), n_sources, pull_size)  # (rounds, sources)
        true_overlap.append(sum(overlap_before[k][taken[:, k]] for k in range(n_sources)))
    for name, values in (("arms", arms), ("estimates", estimates), ("regret", regret), ("true_overlap", true_overlap)):
        save_array(out.dir, name, np.asarray(values))
    out.facts.update(
        policy=policy,
        final_regret=float(np.mean([r[-1] for r in regret])),
        final_true_overlap=float(np.mean([c[-1] for c in true_overlap])),
        pulls_per_source=np.bincount(np.asarray(arms).ravel(), minlength=n_sources).tolist(),
    )
