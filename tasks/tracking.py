"""MLflow bookkeeping shared by stages and flows, through the thread-safe client API.

Stages may run in worker threads that do not see a flow's active run, so runs are
addressed by id, never through MLflow's global "active run".
"""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import Any, Iterable

from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from tasks.workspace import mlflow_artifact_root, mlflow_uri

MAX_PARAM_CHARS = 6000
BATCH = 100  # MLflow's limit on params per log_batch call


def client() -> MlflowClient:
    uri = mlflow_uri()
    if not uri.startswith("sqlite:") or uri in _ready:
        return MlflowClient(tracking_uri=uri)
    # MLflow creates a new SQLite store's tables on first use, and two processes doing so at
    # once collide ("table ... already exists"): each process's first use takes an flock.
    db = Path(uri.removeprefix("sqlite:///"))
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".init-lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        c = MlflowClient(tracking_uri=uri)
        c.search_experiments(max_results=1)
    _ready.add(uri)
    return c


_ready: set[str] = set()  # the SQLite stores this process has opened once


# The MLflow UI's kind for experiments of trained models (as opposed to GenAI apps):
# runs, params, metrics and artifacts rather than traces and prompts.
EXPERIMENT_KIND_TAG, TRAINING_KIND = "mlflow.experimentKind", "custom_model_development"


def experiment_id(c: MlflowClient, name: str) -> str:
    found = c.get_experiment_by_name(name)
    if found is not None:
        mark_training_experiment(c, found)
        return found.experiment_id
    # A local store keeps its artifacts in the workspace; a server decides for itself.
    location = mlflow_artifact_root() if mlflow_uri().startswith("sqlite:") else None
    try:
        return c.create_experiment(name, artifact_location=location, tags={EXPERIMENT_KIND_TAG: TRAINING_KIND})
    except MlflowException:  # another run created it a moment ago
        found = c.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def mark_training_experiment(c: MlflowClient, experiment) -> None:
    """Declare an experiment made before experiments carried their kind a model-training one;
    a kind someone chose for it stays."""
    if EXPERIMENT_KIND_TAG not in experiment.tags:
        c.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, TRAINING_KIND)


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}``; list items get their index."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)) and value and all(isinstance(v, (dict, list)) for v in value):
        items = ((str(i), v) for i, v in enumerate(value))
    else:
        return {prefix: value}
    out: dict[str, Any] = {}
    for k, v in items:
        out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def as_params(value: Any) -> dict[str, Any]:
    """A config (or a stage's parameters) as MLflow params: flattened, the method written as
    on the command line (``method=aux_conf``, ``method.alpha_max=0.75``)."""
    flat = flatten(value)
    if "method.name" in flat:
        flat["method"] = flat.pop("method.name")
    return flat


def log_params(c: MlflowClient, run_id: str, params: dict[str, Any]) -> None:
    entries = [Param(k, str(v)[:MAX_PARAM_CHARS]) for k, v in sorted(params.items())]
    for i in range(0, len(entries), BATCH):
        c.log_batch(run_id, params=entries[i : i + BATCH])


def log_metrics(c: MlflowClient, run_id: str, metrics: dict[str, Any], step: int = 0) -> None:
    entries = [Metric(k, float(v), 0, step) for k, v in metrics.items() if _is_number(v)]
    for i in range(0, len(entries), 1000):
        c.log_batch(run_id, metrics=entries[i : i + 1000])


def log_history(
    c: MlflowClient, run_id: str, history: Iterable[dict[str, float]], prefix: str = "", step: str = "epoch"
) -> None:
    """Per-epoch (or per-``step``) figures as metric steps, in one write: every SQLite write costs ~10 ms."""
    entries = [
        Metric(f"{prefix}{k}", float(v), 0, int(row[step]))
        for row in history
        for k, v in row.items()
        if k != step and _is_number(v)
    ]
    for i in range(0, len(entries), 1000):
        c.log_batch(run_id, metrics=entries[i : i + 1000])


def set_tags(c: MlflowClient, run_id: str, tags: dict[str, Any]) -> None:
    c.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)
