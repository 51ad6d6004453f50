"""``cached_stage``: turns a plain function into a content-addressed, tracked Prefect task.

The wrapped function receives a :class:`StageOutput` first and the stage's inputs
after it (config slices, a seed, manifests of the kinds in tasks/artifacts.py), and
writes one kind of artifact, which it names: ``@cached_stage(WeakLabels)``. Its cache key
hashes the stage name and kind, the code fingerprint of its module and the models it
imports, the config slices, and the fingerprints of input manifests. A manifest of the
wrong kind for a parameter is refused by name. Artifacts are written into a scratch
folder that is renamed into place only when the stage succeeded, so a cache record never
points at a half-written folder. Each computed stage gets an MLflow child run under the flow's run.
A stage that fails on transient I/O is retried; its ``attempts`` are recorded in its facts.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import os
import shutil
import time
import typing
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from mlflow.exceptions import MlflowException
from prefect import task
from prefect.cache_policies import CacheKeyFnPolicy
from prefect.runtime import task_run
from sqlalchemy.exc import OperationalError

from tasks import tracking
from tasks.code_fingerprint import code_fingerprint, code_hashes
from tasks.errors import DataError
from tasks.manifest import STAGE_RECORD, Manifest, canonical, fingerprint_dir, hash_json
from tasks.workspace import artifacts_root, home, prefect_results


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


log = logging.getLogger("w2s")

RETRIES = 2  # a stage that fails on transient I/O runs up to three times
RETRY_DELAY_SECONDS = 2.0


def stage_key(name: str, kind: str, module: str, inputs: dict[str, Any]) -> str:
    return hash_json({"stage": name, "kind": kind, "code": code_fingerprint(module), "inputs": inputs})


def artifact_dir(stage: str, key: str) -> Path:
    return artifacts_root() / stage / key[:32]


def cache_record(key: str) -> Path:
    """Prefect's persisted result for a stage key: its presence is what makes a cache hit."""
    return prefect_results() / key


def cache_intact(stage: str, key: str) -> bool:
    """Whether a cache record can be trusted: the record itself reads (a run killed while
    Prefect wrote it leaves it cut short), and the folder behind it still holds every file,
    at its size, that the stage wrote. A deleted or truncated artifact makes the record stale."""
    try:
        json.loads(cache_record(key).read_text())["result"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    folder = artifact_dir(stage, key)
    files = (read_stage_record(folder) or {}).get("files")
    if files is None:
        return False
    return all((folder / rel).is_file() and (folder / rel).stat().st_size == size for rel, size in files.items())


def read_stage_record(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / STAGE_RECORD).read_text())
    except (OSError, ValueError):
        return None


def cached_stage(produces: type[Manifest]) -> Callable[[Callable[..., None]], Any]:
    """``@cached_stage(Kind)`` wraps ``fn(out, **inputs)``, which writes a ``Kind`` artifact,
    as a Prefect task keyed on content and code.

    The task's function carries ``cache_key(*args, **kwargs)``, the key a call would have,
    and ``produces``, so that a plan can be drawn without running anything.
    """
    return lambda fn: _stage_task(fn, produces)


def _stage_task(fn: Callable[..., None], produces: type[Manifest]) -> Any:
    name = fn.__name__
    signature = inspect.signature(fn)
    inputs = [p for p in signature.parameters.values() if p.name != "out"]
    run_param = inspect.Parameter("run", inspect.Parameter.KEYWORD_ONLY, default=None)
    stage_signature = signature.replace(parameters=[*inputs, run_param], return_annotation=Manifest)

    def parameters_of(args: tuple, kwargs: dict) -> dict[str, Any]:
        bound = stage_signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return {k: v for k, v in bound.arguments.items() if k != "run"}

    def key_of(parameters: dict[str, Any]) -> str:
        return stage_key(name, produces.__name__, fn.__module__, {k: v for k, v in parameters.items() if k != "run"})

    @functools.wraps(fn)
    def body(*args, **kwargs) -> Manifest:
        run = kwargs.pop("run", None)
        params = parameters_of(args, kwargs)
        check_kinds(fn, params)
        key = key_of(params)
        final = artifact_dir(name, key)
        # The key's lock is held here: a scratch folder of this key is a killed run's leftover.
        for leftover in final.parent.glob(f".tmp-{key[:16]}-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        scratch = final.parent / f".tmp-{key[:16]}-{uuid.uuid4().hex[:8]}"
        scratch.mkdir(parents=True)
        out = StageOutput(scratch)
        started = time.perf_counter()
        attempt = task_run.run_count or 1
        try:
            fn(out, **params)
            out.facts["seconds"] = round(time.perf_counter() - started, 4)
            out.facts["attempts"] = attempt
            _write_record(scratch, name, key, fn.__module__, params)
        except BaseException as e:
            shutil.rmtree(scratch, ignore_errors=True)
            if attempt <= RETRIES and transient(e):
                log.warning("%s: attempt %d failed (%s: %s); retrying", name, attempt, type(e).__name__, e)
            raise
        fingerprint = fingerprint_dir(scratch)
        if final.exists():  # a stale record's leftovers, or a forced recompute
            shutil.rmtree(final)
        os.replace(scratch, final)
        out.dir = final
        run_id = _track(name, params, out, key, run or RunContext())
        return produces(
            stage=name,
            key=key,
            path=final.relative_to(home()).as_posix(),
            fingerprint=fingerprint,
            facts=out.facts,
            mlflow_run_id=run_id,
        )

    body.__signature__ = stage_signature
    del body.__wrapped__  # Prefect must bind our signature, not fn's
    body.cache_key = lambda *args, **kwargs: key_of(parameters_of(args, kwargs))
    body.bound_parameters = parameters_of
    body.stage_module = fn.__module__
    body.produces = produces
    return task(
        body,
        name=name,
        cache_policy=CacheKeyFnPolicy(cache_key_fn=lambda context, parameters: key_of(parameters)),
        persist_result=True,
        result_serializer="json",
        retries=RETRIES,
        retry_delay_seconds=RETRY_DELAY_SECONDS,
        retry_condition_fn=lambda task, task_run, state: transient(state.data),
    )


def check_kinds(fn: Callable, params: dict[str, Any]) -> None:
    """Each manifest is of the kind its parameter names (``labels: WeakLabels``,
    ``sources: list[SourceSplits]``): two manifests swapped in a call fail here, by name."""
    hints = _hints(fn)
    for param, value in params.items():
        expected = hints.get(param)
        for v in manifests_in(value):
            if isinstance(v, Manifest) and expected and not isinstance(v, expected):
                raise TypeError(f"stage {fn.__name__}: {param} takes {_kind_names(expected)}, got a {type(v).__name__} "
                                f"(from stage {v.stage})")


@functools.lru_cache(maxsize=None)
def _hints(fn: Callable) -> dict[str, tuple[type, ...]]:
    """The manifest kinds each parameter of ``fn`` accepts, read off its annotations."""
    out = {}
    for param, hint in typing.get_type_hints(fn).items():
        kinds = tuple(t for t in _flatten_hint(hint) if isinstance(t, type) and issubclass(t, Manifest))
        if kinds:
            out[param] = kinds
    return out


def _flatten_hint(hint) -> list:
    args = typing.get_args(hint)
    return [t for a in args for t in _flatten_hint(a)] if args else [hint]


def _kind_names(kinds: tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in kinds)


def manifests_in(value: Any) -> list[Manifest]:
    """The manifests in a stage argument: itself, or those in a list, tuple or dict of them."""
    if isinstance(value, Manifest):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [m for v in value for m in manifests_in(v)]
    return []


def transient(error: BaseException) -> bool:
    """Worth another attempt: I/O that may pass (a full or flaky disk, a dropped connection,
    a database busy with another run). Never bad input, a missing file or a denied one, nor
    a bug: those fail the same way again."""
    permanent = (DataError, FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)
    if isinstance(error, MlflowException):  # MLflow reports a busy database as TEMPORARILY_UNAVAILABLE
        return error.error_code == "TEMPORARILY_UNAVAILABLE"
    return isinstance(error, (OSError, OperationalError)) and not isinstance(error, permanent)


def _write_record(folder: Path, name: str, key: str, module: str, params: dict[str, Any]) -> None:
    """How this result was made: code hashes per module, parameters, and each file's size.
    Written inside the scratch folder, so it is committed with the artifacts or not at all."""
    files = {f.relative_to(folder).as_posix(): f.stat().st_size for f in sorted(folder.rglob("*")) if f.is_file()}
    record = {"stage": name, "key": key, "code": code_hashes(module), "params": canonical(params), "files": files}
    (folder / STAGE_RECORD).write_text(json.dumps(record, sort_keys=True, indent=1))


def _track(name: str, params: dict[str, Any], out: StageOutput, key: str, run: RunContext) -> str | None:
    """An MLflow child run under the flow's run: config slice, input fingerprints, facts, histories, plots."""
    if run.parent_run_id is None:
        return None
    c = tracking.client()
    tags = {"mlflow.parentRunId": run.parent_run_id, "mlflow.runName": run.label or name, "w2s.stage": name, "w2s.cache_key": key}
    child = c.create_run(run.experiment_id, tags={**run.tags, **tags}).info.run_id
    tracking.log_params(c, child, tracking.as_params(canonical(params)))
    tracking.log_metrics(c, child, tracking.flatten(out.facts))
    for prefix, history in out.histories.items():
        tracking.log_history(c, child, history, prefix=f"{prefix}_" if prefix else "")
    for plot in out.plots:
        c.log_artifact(child, str(out.path(plot)))
    c.set_terminated(child, "FINISHED")
    return child
