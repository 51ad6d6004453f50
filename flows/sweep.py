"""A sweep: the product of a grid of overrides, as one Prefect flow over shared cached stages.

Each cell is a Prefect task that runs the experiment's DAG for its config, so the cells
fan out on the flow's task runner: threads by default, a Dask cluster with
``runner: dask``. Cells that need the same stage (one weak model per seed, whatever the
method) meet at its per-key lock: the first computes it, the others wait and read it as a
cache hit. A cell that fails is reported with its error and the others carry on.
"""

from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.transactions import CommitMode, transaction

from flows import progress, tracking
from flows.experiment import run_experiment
from flows.runner import StageRunner, tally_stages
from flows.study_config import SweepConfig, cell_label
from models.metrics import HEADLINE_METRICS
from tasks.report_sweep import report_sweep
from tasks.stage import RunContext

# Where the cells run changes no result: kept out of the report's cache key.
EXECUTION = {"runner", "workers", "dask_address"}


def task_runner(config: SweepConfig):
    if config.runner == "dask":
        from prefect_dask import DaskTaskRunner

        if config.dask_address:
            return DaskTaskRunner(address=config.dask_address)
        # One thread per worker process: torch's own threads do the rest. The scheduler and its
        # dashboard listen on loopback only (Dask's dashboard would take every interface).
        return DaskTaskRunner(cluster_kwargs={"n_workers": config.workers, "threads_per_worker": 1, "processes": True,
                                              "host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"})
    from prefect.task_runners import ThreadPoolTaskRunner

    return ThreadPoolTaskRunner(max_workers=config.workers)


def run_sweep(config: SweepConfig, out_dir: str | None = None) -> dict:
    """The sweep flow on the task runner its config names."""
    return sweep.with_options(task_runner=task_runner(config))(config, out_dir)


@task(name="sweep-cell", cache_policy=NO_CACHE, persist_result=False)
def run_cell(config: SweepConfig, axes: dict, within: RunContext) -> dict:
    cell = config.cell(axes)
    label = cell_label(axes)
    tags = {"w2s.sweep": config.name, "w2s.cell": label, **{f"w2s.grid.{k}": str(v) for k, v in axes.items()}}
    # Inside a task, a stage's transaction would be committed (and its lock released) only
    # when the whole cell ends, holding up every other cell that needs that stage: commit
    # each stage as soon as it finishes.
    with transaction(commit_mode=CommitMode.EAGER), progress.cell(label):
        with tracking.parent_run(cell, flow_run.get_id(), label, within=within, tags=tags) as cell_run:
            return run_experiment(cell, cell_run)


@flow(name="w2s-sweep", log_prints=False)
def sweep(config: SweepConfig, out_dir: str | None = None) -> dict:
    with tracking.parent_run(config, flow_run.get_id(), f"sweep-{config.name}", tags={"w2s.sweep": config.name}) as run:
        combos = config.combinations()
        progress.expect_cells(len(combos))
        futures = [run_cell.submit(config, axes, run) for axes in combos]
        cells, failed, stages = [], [], {}
        for axes, future in zip(combos, futures):
            future.wait()
            # A cell on a Dask worker reports to no board of this process: it counts here.
            progress.cell_finished(cell_label(axes), failed=future.state.is_failed())
            if future.state.is_failed():
                error = future.state.result(raise_on_failure=False)
                failed.append({"cell": cell_label(axes), "axes": axes, "error": f"{type(error).__name__}: {error}"})
                continue
            result = future.result()
            tally_stages(stages, result["stages"])
            m = result["metrics"]
            cells.append({
                "cell": cell_label(axes), "axes": axes, "config_hash": result["config_hash"],
                "mlflow_run_id": result["mlflow_run_id"], **{k: m[k] for k in HEADLINE_METRICS},
            })
        # Run ids stay out of the report's inputs: they change every run and would defeat its cache.
        reporter = StageRunner(run)
        report = reporter(
            report_sweep,
            [{k: v for k, v in c.items() if k != "mlflow_run_id"} for c in cells],
            failed,
            config.model_dump(mode="json", exclude=EXECUTION),
        )
        tally_stages(stages, reporter.records)
        result = tracking.finish_study(run, stages, report.files, {"cells": len(cells), "failed_cells": len(failed)}, out_dir)
    return {**result, "cells": cells, "failed": failed, "config_hash": config.fingerprint()}
