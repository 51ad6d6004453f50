"""The weak-to-strong experiment as one Prefect flow over cached stages.

ingest → train_weak → weak_label → detect_overlap → select_sources → train_strong → evaluate,
with train_ceiling beside them. Each stage returns a manifest; the runner records which
were cache hits; the parent MLflow run holds the config, the headline metrics and plots.
"""

from __future__ import annotations

from prefect import flow
from prefect.runtime import flow_run

from flows import tracking
from flows.config import ExperimentConfig
from flows.runner import StageRunner
from tasks.detect_overlap import detect_overlap
from tasks.evaluate import PLOT, evaluate
from tasks.ingest import ingest
from tasks.select_sources import select_sources
from tasks.train_ceiling import train_ceiling
from tasks.train_strong import train_strong
from tasks.train_weak import train_weak
from tasks.weak_label import weak_label


@flow(name="w2s-experiment", log_prints=False)
def w2s_experiment(config: ExperimentConfig, refresh: tuple[str, ...] = ()) -> dict:
    seed, data = config.seed, config.data
    with tracking.parent_run(config, flow_run.get_id(), f"{config.strong.method}-seed{seed}") as run:
        stage = StageRunner(run, frozenset(refresh))
        sources = [stage(ingest, source, data.task, data.splits, seed) for source in data.sources]
        weak = stage(train_weak, config.weak, seed, sources)
        labels = stage(weak_label, weak, sources)
        ceiling = stage(train_ceiling, config.ceiling, seed, sources)
        overlap = stage(detect_overlap, config.overlap, labels, sources)
        selection = stage(select_sources, config.selection, config.overlap, seed, labels, sources)
        student = stage(train_strong, config.strong, seed, selection, labels, sources)
        report = stage(evaluate, weak, ceiling, student, sources)

        metrics = report.facts["metrics"]
        tracking.record_outcome(run, metrics, stage.records, [report.file(PLOT)])
    return {
        "metrics": metrics,
        "select_on": report.facts["select_on"],
        "overlap": overlap.facts["sources"],
        "selection": selection.facts,
        "stages": stage.records,
        "mlflow_run_id": run.parent_run_id,
        "config_hash": config.fingerprint(),
    }
