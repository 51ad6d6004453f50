"""Stage ``select_sources``: buy pool points source by source with a bandit policy."""

from __future__ import annotations

import numpy as np

from models.selection import SourcePool
from models.selection import select_sources as run_selection
from models.synthetic import OVERLAP
from tasks.artifacts import Selection, SourceSplits, WeakLabels
from tasks.errors import DataError
from tasks.specs import OverlapConfig, SelectionConfig
from tasks.stage import StageOutput, cached_stage


@cached_stage(Selection)
def select_sources(
    out: StageOutput,
    selection: SelectionConfig,
    overlap: OverlapConfig,
    seed: int,
    labels: WeakLabels,
    sources: list[SourceSplits],
) -> None:
    """``selection``: only what its policy reads (SelectionConfig.as_read). The budget was
    checked against each pool by the flow, right after the split (check_budget)."""
    pools = []
    for i, source in enumerate(sources):
        pool = source.split("w2s_train")
        pools.append(
            SourcePool(
                weak_probs=labels.pool(i),
                representations=pool.x,
                true_density=float(np.mean(pool.group == OVERLAP)) if pool.group is not None else None,
            )
        )
    result = run_selection(
        pools, selection.policy, selection.rounds, selection.pull_size, seed,
        detector=overlap.detector, unit=selection.unit, epsilon=selection.epsilon,
    )
    names = [s.name for s in sources]
    final = result.trace[-1] if result.trace else {}
    Selection.write(
        out, result.taken, result.groups, result.trace,
        policy=selection.policy,
        points_per_source=dict(zip(names, (len(t) for t in result.taken))),
        estimated_density=dict(zip(names, final.get("estimated_density", []))),
        cumulative_regret=final.get("cumulative_regret"),
    )
    out.histories["selection"] = [
        {"epoch": row["round"], "cumulative_regret": row["cumulative_regret"], "detected_overlap": row["detected_overlap"]}
        for row in result.trace
    ]


def check_budget(selection: SelectionConfig, sources: list[SourceSplits]) -> None:
    """A real source's pool size is known once it is split: the flow checks the budget then,
    before any model is trained (a generated source's is checked with the config; a plan's
    placeholders, with no facts yet, are not checked)."""
    for source in sources:
        problem = selection.budget_problem(source.name, source.info.sizes["w2s_train"]) if source.facts else None
        if problem:
            raise DataError(problem)
