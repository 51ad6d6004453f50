"""Runs stages inside a flow: result storage, forced refreshes, and which stages were cache hits."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any

from tasks.manifest import Manifest
from tasks.stage import RunContext
from tasks.workspace import prefect_results

log = logging.getLogger("w2s")


@dataclass
class StageRunner:
    """Calls cached stages and keeps the record: cached or computed, seconds, manifest.

    A stage named in ``refresh`` is recomputed, and so is every stage that consumes a
    manifest a refreshed stage produced: that is "the stage and what depends on it",
    read off the data flow rather than a hand-kept list.
    """

    run: RunContext
    refresh: frozenset[str] = frozenset()
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    _refreshed_keys: set[str] = field(default_factory=set)

    def __call__(self, stage, *args, label: str | None = None, **kwargs) -> Any:
        """Run ``stage``; ``label`` names its record and MLflow run when it plays several roles."""
        name = label or stage.name
        inputs = _manifests(args) + _manifests(kwargs)
        force = stage.name in self.refresh or any(m.key in self._refreshed_keys for m in inputs)
        started = time.perf_counter()
        run = replace(self.run, label=label) if label else self.run
        state = stage.with_options(result_storage=prefect_results(), refresh_cache=force)(
            *args, run=run, return_state=True, **kwargs
        )
        manifest = state.result()  # raises the stage's own error if it failed
        cached = state.name == "Cached"
        if force:
            self._refreshed_keys.add(manifest.key)
        record = self.records.setdefault(name, {"cached": True, "seconds": 0.0, "runs": 0})
        record["cached"] = record["cached"] and cached
        record["seconds"] = round(record["seconds"] + time.perf_counter() - started, 3)
        record["runs"] += 1
        log.info("%-15s %s  %.2fs", name, "cached" if cached else "computed", time.perf_counter() - started)
        return manifest

    @property
    def cache_hits(self) -> dict[str, bool]:
        return {name: r["cached"] for name, r in self.records.items()}


def _manifests(value: Any) -> list[Manifest]:
    if isinstance(value, Manifest):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [m for v in value for m in _manifests(v)]
    return []
