"""A model ladder (docs/backbones.md; Burns et al.'s main figure) as one Prefect flow over cached stages.

For each seed: every model's splits (its own frozen features as both views, computed in
every mode because selection reads them; a fine-tuned model trains on the raw inputs
beside them) and its ground-truth fit; every model but the largest labels the
pool; then every (weak < strong) pair's selection, student and evaluation, under a
nested MLflow run of its own. A model's ground-truth fit is one stage key whichever role
it plays (teacher of larger models, ceiling of smaller ones), so N models cost N fits and
N(N-1)/2 students, and a longer model list computes only what it adds.
"""

from __future__ import annotations

from dataclasses import dataclass

from prefect import flow
from prefect.runtime import flow_run

from flows import progress, tracking
from flows.config import ExperimentConfig
from flows.experiment import ingest_sources
from flows.runner import StageRunner, tally_stages
from flows.study_config import LadderConfig
from models.metrics import HEADLINE_METRICS
from tasks.artifacts import Evaluation, SourceSplits, TrainedModel, WeakLabels
from tasks.evaluate import evaluate
from tasks.report_ladder import report_ladder
from tasks.select_sources import select_sources
from tasks.specs import BackboneConfig
from tasks.train_strong import train_strong
from tasks.train_weak import train_weak
from tasks.weak_label import weak_label


@dataclass(frozen=True)
class Rung:
    """One model of the ladder, for one seed: its splits, ground-truth fit and pool labels."""

    backbone: BackboneConfig
    sources: list[SourceSplits]
    truth: TrainedModel
    labels: WeakLabels | None  # None for the largest model: it teaches no one


def rungs(stage, config: ExperimentConfig, backbones: list[BackboneConfig]) -> list[Rung]:
    """Every model's splits, its fit on ground truth (the strong recipe: ``ceiling``'s head,
    or the model fine-tuned) and, but for the largest, its labels of the pool."""
    out = []
    for k, backbone in enumerate(backbones):
        # The model's features are both views: as a teacher it reads the same as as a student.
        sources = ingest_sources(stage, config, strong=backbone, weak=backbone)
        truth = stage(
            train_weak, weak=config.ceiling.head(), seed=config.seed, sources=sources,
            finetune=backbone if backbone.trains else None, label=f"truth {backbone.name}",
        )
        labels = None
        if k < len(backbones) - 1:
            labels = stage(weak_label, weak=truth, sources=sources, label=f"labels {backbone.name}")
        out.append(Rung(backbone, sources, truth, labels))
    return out


def pair_stages(stage, config: ExperimentConfig, weak: Rung, strong: Rung) -> Evaluation:
    """The weak model's labels teach the strong model: its selection, student and evaluation."""
    selection = stage(
        select_sources, selection=config.selection.as_read(), overlap=config.overlap, seed=config.seed,
        labels=weak.labels, sources=strong.sources,
    )
    student = stage(
        train_strong, strong=config.strong.head(), method=config.method_params, seed=config.seed,
        selection=selection, labels=weak.labels, sources=strong.sources,
        finetune=strong.backbone if strong.backbone.trains else None,
    )
    return stage(evaluate, weak=weak.truth, ceiling=strong.truth, student=student, sources=strong.sources)


@flow(name="w2s-ladder", log_prints=False)
def ladder(config: LadderConfig, out_dir: str | None = None) -> dict:
    flow_run_id = flow_run.get_id()
    tags = {"w2s.ladder": ",".join(config.models)}
    with tracking.parent_run(config, flow_run_id, "ladder", tags=tags) as run:
        shared, stages, cells = StageRunner(run), {}, []
        progress.expect_cells(config.seeds * len(config.pairs()), "pairs")
        for seed in range(config.seeds):
            experiment = config.experiment_config(seed)
            models = rungs(shared, experiment, config.backbones(experiment))
            for i, j in config.pairs():
                weak, strong = models[i], models[j]
                name = f"{weak.backbone.name} -> {strong.backbone.name}"
                pair_tags = {**tags, "w2s.weak_model": weak.backbone.name, "w2s.strong_model": strong.backbone.name}
                with progress.cell(f"{name}/seed{seed}"), tracking.parent_run(
                    _pair_config(experiment, weak, strong), flow_run_id, f"{name}/seed{seed}", within=run, tags=pair_tags,
                ) as pair_run:
                    stage = StageRunner(pair_run)
                    evaluation = pair_stages(stage, experiment, weak, strong)
                    metrics = evaluation.info.metrics
                    tracking.record_outcome(pair_run, metrics, stage.records, [evaluation.plot])
                tally_stages(stages, stage.records)
                cells.append({"weak": weak.backbone.name, "strong": strong.backbone.name, "seed": seed,
                              **{k: metrics[k] for k in HEADLINE_METRICS}, "mlflow_run_id": pair_run.parent_run_id})
        tally_stages(stages, shared.records)
        # Run ids stay out of the report's inputs: they change every run and would defeat its cache.
        reporter = StageRunner(run)
        report = reporter(
            report_ladder, cells=[{k: v for k, v in c.items() if k != "mlflow_run_id"} for c in cells],
            config=config.model_dump(mode="json"),
        )
        tally_stages(stages, reporter.records)
        result = tracking.finish_study(run, stages, report.files, report.headline, out_dir)
    return {**result, "cells": cells, "config_hash": config.fingerprint()}


def _pair_config(config: ExperimentConfig, weak: Rung, strong: Rung) -> ExperimentConfig:
    """What a pair's MLflow run records: the experiment's config with the pair's models."""
    return config.model_copy(update={
        "weak": config.ceiling.model_copy(update={"backbone": weak.backbone}),
        "strong": config.strong.model_copy(update={"backbone": strong.backbone}),
    })
