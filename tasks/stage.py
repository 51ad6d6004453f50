"""``cached_stage``: turns a plain function into a content-addressed, tracked Prefect task.

The wrapped function receives a :class:`StageOutput` first and the stage's inputs
after it (config slices, a seed, manifests). Its cache key hashes the stage name, the
code fingerprint of its module and the models it imports, the config slices, and the
fingerprints of input manifests. Artifacts are written into a scratch folder that is
renamed into place only when the stage succeeded, so a cache record never points at a
half-written folder. Each computed stage gets an MLflow child run under the flow's run.
"""

from __future__ import annotations

import functools
import inspect
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from prefect import task

from tasks import tracking
from tasks.code_fingerprint import code_fingerprint
from tasks.manifest import Manifest, canonical, fingerprint_dir, hash_json
from tasks.workspace import artifacts_root, home


@dataclass(frozen=True)
class RunContext:
    """Where a stage reports: the flow's MLflow run. Never part of a cache key."""

    parent_run_id: str | None = None
    experiment_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    label: str | None = None  # names the child run when one stage runs in several roles


@dataclass
class StageOutput:
    """What a stage body fills in: files under ``dir``, facts, per-epoch histories, plots."""

    dir: Path
    facts: dict[str, Any] = field(default_factory=dict)
    histories: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    plots: list[str] = field(default_factory=list)

    def path(self, name: str) -> Path:
        return self.dir / name


def stage_key(name: str, module: str, inputs: dict[str, Any]) -> str:
    return hash_json({"stage": name, "code": code_fingerprint(module), "inputs": inputs})


def cached_stage(fn: Callable[..., None]) -> Any:
    """Wrap ``fn(out, **inputs)`` as a Prefect task keyed on content and code."""
    name = fn.__name__
    signature = inspect.signature(fn)
    inputs = [p for p in signature.parameters.values() if p.name != "out"]
    run_param = inspect.Parameter("run", inspect.Parameter.KEYWORD_ONLY, default=None)

    def key_of(parameters: dict[str, Any]) -> str:
        return stage_key(name, fn.__module__, {k: v for k, v in parameters.items() if k != "run"})

    @functools.wraps(fn)
    def body(*args, run: RunContext | None = None, **kwargs) -> Manifest:
        bound = body.__signature__.bind(*args, run=run, **kwargs)
        bound.apply_defaults()
        params = dict(bound.arguments)
        params.pop("run")
        key = key_of(params)
        final = artifacts_root() / name / key[:32]
        scratch = final.parent / f".tmp-{key[:16]}-{uuid.uuid4().hex[:8]}"
        scratch.mkdir(parents=True)
        out = StageOutput(scratch)
        started = time.perf_counter()
        try:
            fn(out, **params)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        out.facts["seconds"] = round(time.perf_counter() - started, 4)
        fingerprint = fingerprint_dir(scratch)
        if final.exists():  # a record lost, or an identical concurrent computation
            shutil.rmtree(final)
        os.replace(scratch, final)
        out.dir = final
        run_id = _track(name, params, out, key, run or RunContext())
        return Manifest(
            stage=name,
            key=key,
            path=final.relative_to(home()).as_posix(),
            fingerprint=fingerprint,
            facts=out.facts,
            mlflow_run_id=run_id,
        )

    body.__signature__ = signature.replace(parameters=[*inputs, run_param], return_annotation=Manifest)
    del body.__wrapped__  # Prefect must bind our signature, not fn's
    return task(
        body,
        name=name,
        cache_key_fn=lambda context, parameters: key_of(parameters),
        persist_result=True,
        result_serializer="json",
    )


def _track(name: str, params: dict[str, Any], out: StageOutput, key: str, run: RunContext) -> str | None:
    """An MLflow child run under the flow's run: config slice, input fingerprints, facts, histories, plots."""
    if run.parent_run_id is None:
        return None
    c = tracking.client()
    tags = {"mlflow.parentRunId": run.parent_run_id, "mlflow.runName": run.label or name, "w2s.stage": name, "w2s.cache_key": key}
    child = c.create_run(run.experiment_id, tags={**run.tags, **tags}).info.run_id
    tracking.log_params(c, child, tracking.flatten(canonical(params)))
    tracking.log_metrics(c, child, tracking.flatten(out.facts))
    for prefix, history in out.histories.items():
        tracking.log_history(c, child, history, prefix=f"{prefix}_" if prefix else "")
    for plot in out.plots:
        c.log_artifact(child, str(out.path(plot)))
    c.set_terminated(child, "FINISHED")
    return child
