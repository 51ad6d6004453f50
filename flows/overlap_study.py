"""The overlap-density study (RESEARCH.md §1) as one Prefect flow over cached, batched stages.

ingest_grid → weak and ceiling → detection (each detector) → W2S students on the true
overlap points, on each detector's overlap points, and on all points → report. Every
stage fits all (grid point × seed) cells at once, and is cached like the experiment's
stages: adding a detector or a seed recomputes only what it touches.
"""

from __future__ import annotations

import json

from prefect import flow
from prefect.runtime import flow_run

from flows import tracking
from flows.runner import StageRunner
from flows.study_config import OverlapStudyConfig
from models.synthetic import overlap_density, scale_counts
from tasks.data import GRID_SPLITS
from tasks.detect_grid import detect_grid
from tasks.ingest_grid import ingest_grid
from tasks.report_overlap_study import PLOT, TABLE, report_overlap_study
from tasks.train_grid import train_grid_truth, train_grid_w2s


@flow(name="w2s-overlap-study", log_prints=False)
def overlap_study(config: OverlapStudyConfig, out_dir: str | None = None) -> dict:
    cells = config.cells()
    layout = [[{s: scale_counts(c.model_dump(), getattr(config.splits, s)) for s in GRID_SPLITS}] for c in cells]
    ratios = [overlap_density(c.model_dump()) for c in cells[:-1]]
    with tracking.parent_run(config, flow_run.get_id(), "overlap-study") as run:
        stage = StageRunner(run)
        data = stage(ingest_grid, config.task, layout, config.seeds)
        weak = stage(train_grid_truth, config.weak, "weak", data, label="weak")
        ceiling = stage(train_grid_truth, config.ceiling, "full", data, label="ceiling")
        detections = {d: stage(detect_grid, d, data, weak, label=f"detect_{d}") for d in config.detectors}

        def student(subset, detection=None, name=None):
            name = name or f"w2s_{subset}"
            return stage(train_grid_w2s, config.strong, config.weak_labels, subset, data, weak, detection, label=name)

        students = {
            "w2s_true_overlap": student("true_overlap"),
            **{f"w2s_detected_{d}": student("detected_overlap", m, f"w2s_detected_{d}") for d, m in detections.items()},
            "w2s_all": student("all"),
        }
        report = stage(report_overlap_study, ratios, data, {"weak": weak, "ceiling": ceiling, **students}, detections)

        summary = json.loads(report.file("overlap_study.json").read_text())
        curves = [{**r, "step": config.overlap_counts[r["grid"]]} for r in summary["rows"][:-1]]
        tracking.record_curves(run, [{k: v for k, v in r.items() if k != "grid"} for r in curves], step="step")
        files = [report.file(TABLE), report.file(PLOT), report.file("overlap_study.json")]
        tracking.record_outcome(run, report.facts, stage.records, files)
    return {
        "rows": summary["rows"],
        "checks": summary["checks"],
        "table": report.file(TABLE).read_text(),
        "written": tracking.publish(files, out_dir),
        "stages": stage.records,
        "mlflow_run_id": run.parent_run_id,
        "config_hash": config.fingerprint(),
    }
