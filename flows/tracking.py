"""The flow's MLflow parent run: config, tags, headline metrics, cache hits, plots."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from flows.config import ExperimentConfig, JobConfig
from flows.run_note import NOTE_TAG, experiment_note, table_note
from flows.study_config import SweepConfig
from tasks import tracking
from tasks.stage import RunContext


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@contextmanager
def parent_run(
    config: JobConfig, flow_run_id: str | None, run_name: str, within: RunContext | None = None, tags: dict | None = None
) -> Iterator[RunContext]:
    """Open the flow's run (nested in ``within``, a study's run, if given), log the full
    config, and close it FINISHED or FAILED."""
    c = tracking.client()
    experiment = within.experiment_id if within else tracking.experiment_id(c, config.experiment)
    if not within:
        close_orphaned_runs(c, experiment)
    tags = {"w2s.config_hash": config.fingerprint(), "w2s.git_commit": git_commit(), **(tags or {})}
    tags["w2s.kind"] = run_kind(config)
    tags = {**tags, "w2s.host": socket.gethostname(), "w2s.pid": str(os.getpid())}
    if flow_run_id:
        tags["prefect.flow_run_id"] = flow_run_id
    run_tags = {**tags, "mlflow.runName": run_name}
    if within:
        run_tags["mlflow.parentRunId"] = within.parent_run_id
    run_id = c.create_run(experiment, tags=run_tags).info.run_id
    tracking.log_params(c, run_id, tracking.as_params(config.model_dump(mode="json")))
    c.log_text(run_id, config.to_yaml(), "config.yaml")
    try:
        yield RunContext(parent_run_id=run_id, experiment_id=experiment, tags=tags)
    except BaseException:
        c.set_terminated(run_id, "FAILED")
        raise
    c.set_terminated(run_id, "FINISHED")


def run_kind(config: JobConfig) -> str:
    """What a parent run records: one ``experiment`` (a sweep's cells too), a ``sweep``, or a ``study``."""
    if isinstance(config, ExperimentConfig):
        return "experiment"
    return "sweep" if isinstance(config, SweepConfig) else "study"


def close_orphaned_runs(c, experiment: str) -> None:
    """Runs left RUNNING by a process of this machine that is gone (killed, or the machine
    restarted) are marked KILLED, so that the UI does not show them as still in progress."""
    query = f"attributes.status = 'RUNNING' and tags.`w2s.host` = '{socket.gethostname()}'"
    for found in c.search_runs([experiment], query, max_results=1000):
        pid = int(found.data.tags.get("w2s.pid", "0"))
        if pid and not _alive(pid):
            c.set_terminated(found.info.run_id, "KILLED")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, and someone else's
        pass
    return True


STAGES_FILE = "stages.json"  # the parent run's stage records: cached or computed, seconds, runs
FIGURES = (".png", ".jpg", ".jpeg", ".svg")


def record_outcome(
    run: RunContext, metrics: dict, stages: dict[str, dict], plots: list[Path], tags: dict | None = None,
    table: str | None = None,
) -> None:
    """Headline figures (nested dicts are flattened to dotted names), cache hits and ``tags`` as
    tags, plots, the stage records, and the run page's description: the experiment's headline
    metrics, or a sweep's or study's own ``table``, above the figures."""
    c = tracking.client()
    tracking.log_metrics(c, run.parent_run_id, tracking.flatten(metrics))
    tags = {**(tags or {}), **{f"w2s.cached.{name}": str(r["cached"]).lower() for name, r in stages.items()}}
    tags["w2s.cache_hits"] = ",".join(n for n, r in stages.items() if r["cached"]) or "none"
    tags["w2s.retries"] = str(sum(r["retries"] for r in stages.values()))  # stages retried after transient I/O faults
    figures = [p.name for p in plots if p.suffix.lower() in FIGURES]
    footer = f"`w2s report {run.parent_run_id}` writes this run as one HTML page."
    tags[NOTE_TAG] = (
        table_note(run.parent_run_id, table, figures, footer) if table is not None
        else experiment_note(run.parent_run_id, metrics, figures, footer)
    )
    tracking.set_tags(c, run.parent_run_id, tags)
    for plot in plots:
        c.log_artifact(run.parent_run_id, str(plot))
    c.log_text(run.parent_run_id, json.dumps(stages, indent=1, sort_keys=True), STAGES_FILE)


def record_curves(run: RunContext, rows: list[dict], step: str) -> None:
    """A study's per-grid-point (or per-round) figures as metric histories of the parent run,
    so that the MLflow UI draws them as curves over ``step``."""
    tracking.log_history(tracking.client(), run.parent_run_id, rows, step=step)


def finish_study(run: RunContext, stages: dict[str, dict], files: list[Path], metrics: dict, out_dir: str | None) -> dict:
    """Close a study or sweep: its report ``files`` (the table first) and headline ``metrics``
    go to the parent run, the files also to ``out_dir``; returns what every study's result shares."""
    table = files[0].read_text()
    record_outcome(run, metrics, stages, files, table=table)
    return {
        "table": table,
        "written": publish(files, out_dir),
        "stages": stages,
        "mlflow_run_id": run.parent_run_id,
    }


def publish(files: list[Path], out_dir: str | None) -> list[str]:
    """Copy result files into the user's output folder, each written whole or not at all."""
    if not out_dir:
        return []
    target = Path(out_dir)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for f in files:
        tmp = target / f".{f.name}.tmp"
        shutil.copyfile(f, tmp)
        os.replace(tmp, target / f.name)
        written.append(str(target / f.name))
    return written
