"""Runs stages inside a flow: result storage, locks, forced reruns, and which stages were cache hits."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any

from flows import progress
from tasks.locks import lock_manager
from tasks.manifest import Manifest
from tasks.stage import RunContext, cache_intact, cache_record, manifests_in
from tasks.workspace import home, prefect_results

log = logging.getLogger("w2s")


@dataclass
class Forcing:
    """What makes a stage recompute whatever its cache holds; the runner acts on it, the
    planner (flows/plan.py) reports it, so that the two cannot disagree.

    ``refresh`` recomputes the named stages; what consumes their output then reruns only
    if that output changed. ``rerun_from`` recomputes the named stages and everything
    downstream of them, read off the data flow (who consumes a manifest a forced stage
    produced) rather than a hand-kept list. A cache record cut short, or whose artifacts
    were deleted or damaged, is recomputed instead of failing later. Stages are named by
    stage or by label.
    """

    refresh: frozenset[str] = frozenset()
    rerun_from: frozenset[str] = frozenset()
    _downstream_keys: set[str] = field(default_factory=set)

    def reasons(self, stage: str, name: str, key: str, inputs: list[Manifest]) -> list[tuple[str, str]]:
        """``(kind, detail)`` pairs: ``forced`` by an option, or ``missing`` (a damaged record)."""
        reasons = []
        if {stage, name} & self.rerun_from:
            reasons.append(("forced", "--from"))
        elif any(m.key in self._downstream_keys for m in inputs):
            reasons.append(("forced", "downstream of --from"))
        if {stage, name} & self.refresh:
            reasons.append(("forced", "--refresh"))
        if cache_record(key).is_file() and not cache_intact(stage, key):
            reasons.append(("missing", "the cache record or its artifacts were deleted or damaged"))
        if any(kind == "forced" and detail != "--refresh" for kind, detail in reasons):
            self._downstream_keys.add(key)  # what consumes this stage's output follows it
        return reasons


@dataclass
class StageRunner:
    """Calls cached stages and keeps the record: cached or computed, seconds, manifest."""

    run: RunContext
    forcing: Forcing = field(default_factory=Forcing)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __call__(self, stage, *args, label: str | None = None, **kwargs) -> Any:
        """Run ``stage``; ``label`` names its record and MLflow run when it plays several roles."""
        name = label or stage.name
        key = stage.fn.cache_key(*args, **kwargs)
        reasons = self.forcing.reasons(stage.name, name, key, manifests_in((args, kwargs)))
        if any(kind == "missing" for kind, _ in reasons):
            log.warning("%s: the cache record or its artifacts are missing or damaged; recomputing", name)
        force = bool(reasons)
        started = time.perf_counter()
        run = replace(self.run, label=label) if label else self.run
        with progress.stage(name) as shown:
            state = stage.with_options(
                result_storage=prefect_results(), refresh_cache=force, cache_policy=_serializable(stage.cache_policy)
            )(*args, run=run, return_state=True, **kwargs)
            manifest = state.result()  # raises the stage's own error if it failed
            cached = shown.cached = state.name == "Cached"
        record = self.records.setdefault(name, {"cached": True, "seconds": 0.0, "runs": 0, "computed": 0, "retries": 0})
        record["cached"] = record["cached"] and cached
        record["seconds"] = round(record["seconds"] + time.perf_counter() - started, 3)
        record["runs"] += 1
        record["computed"] += 0 if cached else 1
        record["retries"] += 0 if cached else manifest.attempts - 1
        if not progress.live():  # a live display shows it instead
            log.info("%-15s %s  %.2fs", name, "cached" if cached else "computed", time.perf_counter() - started)
        return manifest


def tally_stages(total: dict, records: dict) -> None:
    """Stage records summed over the cells of a study or sweep: a stage counts as cached only
    if it always was; ``computed`` counts the times it really ran."""
    for name, r in records.items():
        t = total.setdefault(name, {"cached": True, "seconds": 0.0, "runs": 0, "computed": 0, "retries": 0})
        t["cached"] = t["cached"] and r["cached"]
        t["seconds"] = round(t["seconds"] + r["seconds"], 3)
        for count in ("runs", "computed", "retries"):
            t[count] += r[count]


def _serializable(policy):
    """The stage's cache policy under a per-key lock: a second caller of the same key, in
    another thread or process, waits for the first and then reads its result as a cache hit."""
    return policy.configure(lock_manager=lock_manager(home() / "locks"), isolation_level="SERIALIZABLE")
