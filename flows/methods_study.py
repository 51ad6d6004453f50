"""The method comparison (docs/research.md) as one Prefect flow over cached stages.

Every (setting, variant, seed) cell is a full experiment config run through the
experiment's DAG, as a nested MLflow run of the study's run. Cells of one setting and
seed share ingest, the weak model, its labels, the ceiling, detection and selection
through the cache; each variant adds only its own student (and csl its teachers).
"""

from __future__ import annotations

from prefect import flow
from prefect.runtime import flow_run

from flows import progress, tracking
from flows.experiment import run_experiment
from flows.runner import StageRunner, tally_stages
from flows.study_config import MethodsStudyConfig
from models.metrics import HEADLINE_METRICS
from tasks.report_methods_study import report_methods_study


@flow(name="w2s-methods-study", log_prints=False)
def methods_study(config: MethodsStudyConfig, out_dir: str | None = None) -> dict:
    flow_run_id = flow_run.get_id()
    with tracking.parent_run(config, flow_run_id, "methods-study") as run:
        cells, run_ids, stages = [], [], {}
        progress.expect_cells(len(config.pairs()) * config.seeds)
        for setting in config.settings:
            for seed in range(config.seeds):
                for variant in config.variants:
                    if variant in config.skip.get(setting, ()):
                        continue
                    cell = config.cell(setting, variant, seed)
                    tags = {"w2s.study": "methods", "w2s.setting": setting, "w2s.variant": variant}
                    name = f"{setting}/{variant}/seed{seed}"
                    with progress.cell(name), tracking.parent_run(cell, flow_run_id, name, within=run, tags=tags) as cell_run:
                        result = run_experiment(cell, cell_run)
                    tally_stages(stages, result["stages"])
                    m = result["metrics"]
                    cells.append({
                        "setting": setting, "variant": variant, "method": cell.method.name, "seed": seed,
                        "config_hash": cell.fingerprint(),
                        **{k: m[k] for k in HEADLINE_METRICS},
                        "overlap_density": {o["source"]: o["density"] for o in result["overlap"]},
                    })
                    run_ids.append(result["mlflow_run_id"])
        # Run ids stay out of the report's inputs: they change every run and would defeat its cache.
        reporter = StageRunner(run)
        report = reporter(report_methods_study, cells, config.model_dump(mode="json"))
        tally_stages(stages, reporter.records)
        result = tracking.finish_study(run, stages, report.files, {"cells": len(cells)}, out_dir)
    cells = [{**c, "mlflow_run_id": r} for c, r in zip(cells, run_ids)]
    return {**result, "cells": cells, "config_hash": config.fingerprint()}

