"""Stage ``select_sources``: buy pool points source by source with a bandit policy."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np

from models.selection import SourcePool
from models.selection import select_sources as run_selection
from models.synthetic import OVERLAP
from tasks.data import load_array, load_split, save_array
from tasks.errors import DataError
from tasks.manifest import Manifest
from tasks.stage import StageOutput, cached_stage

if TYPE_CHECKING:
    from flows.config import OverlapConfig, SelectionConfig


@cached_stage
def select_sources(
    out: StageOutput,
    selection: SelectionConfig,
    overlap: OverlapConfig,
    seed: int,
    labels: Manifest,
    sources: list[Manifest],
) -> None:
    pools = []  # the budget was checked against each pool by the flow, right after the split (check_budget)
    for i, source in enumerate(sources):
        pool = load_split([source], "w2s_train")
        pools.append(
            SourcePool(
                weak_probs=load_array(labels, f"pool_probs_{i}"),
                representations=pool.x,
                true_density=float(np.mean(pool.group == OVERLAP)) if pool.group is not None else None,
            )
        )
    result = run_selection(
        pools, selection.policy, selection.rounds, selection.pull_size, seed,
        detector=overlap.detector, unit=selection.unit, epsilon=selection.epsilon,
    )
    for i, (taken, groups) in enumerate(zip(result.taken, result.groups)):
        save_array(out.dir, f"taken_{i}", taken)
        save_array(out.dir, f"groups_{i}", groups)
    out.path("trace.json").write_text(json.dumps(result.trace))
    names = [s.facts["source"] for s in sources]
    final = result.trace[-1] if result.trace else {}
    out.facts.update(
        policy=selection.policy,
        points_per_source=dict(zip(names, (len(t) for t in result.taken))),
        estimated_density=dict(zip(names, final.get("estimated_density", []))),
        cumulative_regret=final.get("cumulative_regret"),
    )
    out.histories["selection"] = [
        {"epoch": row["round"], "cumulative_regret": row["cumulative_regret"], "detected_overlap": row["detected_overlap"]}
        for row in result.trace
    ]


def check_budget(selection: SelectionConfig, sources: list[Manifest]) -> None:
    """Generated sources are checked with the config; a real one's pool size is known once
    it is split, and the flow checks it then, before any model is trained."""
    budget = selection.rounds * selection.pull_size
    for source in sources:
        pool = source.facts.get("sizes", {}).get("w2s_train")
        if selection.policy != "all" and pool is not None and budget > pool:
            raise DataError(
                f"selection: budget rounds*pull_size={budget} exceeds the pool of source "
                f"'{source.facts['source']}' ({pool} points in w2s_train)"
            )
