"""Stage ``select_grid``: one selection policy run on every seed's sources, round by round."""

from __future__ import annotations

import numpy as np

from models.selection import SourcePool, collected_after, select_sources
from models.synthetic import OVERLAP
from tasks.grid_artifacts import GridData, GridModel, GridSelection
from tasks.specs import BanditConfig
from tasks.stage import StageOutput, cached_stage


def source_rows(split, cell: int, n_sources: int) -> list[np.ndarray]:
    """Row indices of each source of one cell, in draw order (a pull takes the next ones)."""
    return [np.flatnonzero((split.cell == cell) & (split.source == k)) for k in range(n_sources)]


@cached_stage(GridSelection)
def select_grid(
    out: StageOutput,
    policy: str,
    bandit: BanditConfig,
    rounds: int,
    pull_size: int,
    detector: str,
    data: GridData,
    weak: GridModel,
) -> None:
    pool = data.split("w2s_train")
    probs = weak.pool_probs
    cells = data.cells
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
    GridSelection.write(
        out, {"arms": arms, "estimates": estimates, "regret": regret, "true_overlap": true_overlap},
        policy=policy,
        final_regret=float(np.mean([r[-1] for r in regret])),
        final_true_overlap=float(np.mean([c[-1] for c in true_overlap])),
        pulls_per_source=np.bincount(np.asarray(arms).ravel(), minlength=n_sources).tolist(),
    )
