"""The overlap-density study (docs/research.md) as one Prefect flow over cached, batched stages.

ingest_grid → weak and ceiling → detection (each detector) → W2S students on the true
overlap points, on each detector's overlap points, and on all points → report. Every
stage fits all (grid point × seed) cells at once, and is cached like the experiment's
stages: another detector adds its detection and student, a new strong model retrains
the students only. The grid and the seeds are one dataset, so changing either redraws
and refits everything.
"""

from __future__ import annotations

from prefect import flow
from prefect.runtime import flow_run

from flows import tracking
from flows.runner import StageRunner
from flows.study_config import OverlapStudyConfig
from models.synthetic import overlap_density, scale_counts
from tasks.data import GRID_SPLITS
from tasks.detect_grid import detect_grid
from tasks.ingest_grid import ingest_grid
from tasks.report_overlap_study import report_overlap_study
from tasks.train_grid import train_grid_truth, train_grid_w2s


@flow(name="w2s-overlap-study", log_prints=False)
def overlap_study(config: OverlapStudyConfig, out_dir: str | None = None) -> dict:
    cells = config.cells()
    layout = [[{s: scale_counts(c.model_dump(), getattr(config.splits, s)) for s in GRID_SPLITS}] for c in cells]
    ratios = [overlap_density(c.model_dump()) for c in cells]
    grid = [{"label": f"{r:.3f}", "ratio": r} for r in ratios[:-1]]
    check = cells[-1]
    grid.append({"label": f"{check.easy}/{check.hard}/{check.overlap}", "ratio": ratios[-1]})
    with tracking.parent_run(config, flow_run.get_id(), "overlap-study") as run:
        stage = StageRunner(run)
        data = stage(ingest_grid, config.task, layout, config.seeds)
        weak = stage(train_grid_truth, config.weak, "weak", data, label="weak")
        ceiling = stage(train_grid_truth, config.ceiling, "full", data, label="ceiling")
        detections = {d: stage(detect_grid, d, data, weak, label=f"detect_{d}") for d in config.detectors}

        def student(name, subset, detection=None):
            return stage(train_grid_w2s, config.strong, config.weak_labels, subset, data, weak, detection, label=name)

        students = {
            "w2s_true_overlap": student("w2s_true_overlap", "true_overlap"),
            **{f"w2s_detected_{d}": student(f"w2s_detected_{d}", "detected_overlap", m) for d, m in detections.items()},
            "w2s_all": student("w2s_all", "all"),
        }
        report = stage(report_overlap_study, grid, data, {"weak": weak, "ceiling": ceiling, **students}, detections)

        summary = report.data
        curves = [{"n_overlap": config.overlap_counts[r["grid"]], **r} for r in summary["rows"][:-1]]
        tracking.record_curves(run, [{k: v for k, v in r.items() if k != "grid"} for r in curves], step="n_overlap")
        result = tracking.finish_study(run, stage.records, report.files, report.headline, out_dir)
    return {"rows": summary["rows"], "checks": summary["checks"], **result, "config_hash": config.fingerprint()}
