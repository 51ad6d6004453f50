"""Deployable flows and ``w2s serve``: the deployments of ``deployments/prefect.yaml``.

Deployments take plain parameters (a list of ``key=value`` overrides, a grid mapping) so
that a run can be triggered from the Prefect UI, ``prefect deployment run`` or a schedule
with the same words as the command line. The prefect.yaml is the one description of the
deployments: ``prefect deploy`` reads it for a work pool, and ``w2s serve`` reads it to
serve them from one process, schedules included, with no work pool at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from prefect import flow, serve as prefect_serve
from prefect.flows import load_flow_from_entrypoint
from prefect.schedules import Cron

from flows.config import load_config
from flows.experiment import w2s_experiment
from flows.study_config import SweepConfig
from flows.sweep import run_sweep

PROJECT = Path(__file__).resolve().parents[1]
PREFECT_YAML = PROJECT / "deployments" / "prefect.yaml"


@flow(name="w2s-experiment-job", log_prints=False)
def experiment_job(overrides: list[str] | None = None, config_file: str | None = None) -> dict:
    """One experiment: ``config_file`` (if any) then ``overrides``, as ``w2s run`` reads them."""
    return w2s_experiment.fn(load_config(config_file, overrides or []))


@flow(name="w2s-sweep-job", log_prints=False)
def sweep_job(
    name: str = "sweep",
    grid: dict[str, list] | None = None,
    base: dict[str, Any] | None = None,
    overrides: list[str] | None = None,
    runner: str = "threads",
    workers: int = 2,
) -> dict:
    """A sweep, as ``w2s sweep`` runs it; its results stay in MLflow (tag ``w2s.sweep=NAME``)."""
    spec = {"name": name, "base": base or {}, "overrides": overrides or [], "runner": runner, "workers": workers}
    if grid:
        spec["grid"] = grid
    return run_sweep(SweepConfig.model_validate(spec))


def load_deployments(path: str | Path | None = None, only: list[str] | tuple[str, ...] = ()) -> list:
    """The deployments of a prefect.yaml, as Prefect runner deployments with their schedules."""
    path = Path(path) if path else PREFECT_YAML
    spec = yaml.safe_load(path.read_text()) or {}
    entries = spec.get("deployments") or []
    names = [d.get("name") for d in entries]
    unknown = sorted(set(only) - set(names))
    if unknown:
        raise ValueError(f"{path}: no deployment named {unknown[0]!r} (deployments: {', '.join(map(str, names))})")
    # Entry points are relative to the project folder (the one holding deployments/): `prefect deploy` is
    # run from there (docs/operations.md says so), and serve must find them wherever it is started.
    root = path.resolve().parent.parent
    deployments = []
    for d in entries:
        if only and d["name"] not in only:
            continue
        file, _, func = d["entrypoint"].partition(":")
        job = load_flow_from_entrypoint(f"{root / file}:{func}")
        schedules = [Cron(s["cron"], timezone=s.get("timezone", "UTC")) for s in d.get("schedules") or [] if "cron" in s]
        deployments.append(
            job.to_deployment(
                name=d["name"],
                description=d.get("description"),
                tags=d.get("tags"),
                parameters=d.get("parameters") or {},
                schedules=schedules or None,
            )
        )
    return deployments


def serve(deployments: list) -> None:
    """Register the deployments and run their scheduled and triggered runs until interrupted."""
    prefect_serve(*deployments)
