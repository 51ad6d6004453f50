"""The weak-to-strong experiment as one Prefect flow over cached stages.

ingest → train_weak → weak_label → detect_overlap → select_sources → train_strong → evaluate,
with train_ceiling beside them and, for a method that needs teachers (csl),
train_teachers (one level of specialists each). A real dataset is ingested as ingest_dataset → embed → make_splits. Each stage
returns a manifest; the runner records which were cache hits; the parent MLflow run holds
the config, the headline metrics and plots.
"""

from __future__ import annotations

from dataclasses import dataclass

from prefect import flow
from prefect.runtime import flow_run

from flows import tracking
from flows.config import ExperimentConfig
from flows.runner import Forcing, StageRunner
from models.methods import METHODS, TEACHERS
from tasks.detect_overlap import detect_overlap
from tasks.embed import backbone_fingerprint, embed
from tasks.artifacts import DatasetRows, Embedding, Evaluation, OverlapDiagnostic, Selection, SourceSplits
from tasks.evaluate import evaluate
from tasks.ingest import ingest
from tasks.ingest_dataset import ingest_dataset
from tasks.make_splits import check_same_classes, make_splits
from tasks.real_data import resolve_source
from tasks.select_sources import check_budget, select_sources
from tasks.specs import BackboneConfig, ModelConfig
from tasks.stage import RunContext
from tasks.train_ceiling import train_ceiling
from tasks.train_strong import train_strong
from tasks.train_teachers import train_teachers
from tasks.train_weak import train_weak
from tasks.weak_label import weak_label


@flow(name="w2s-experiment", log_prints=False)
def w2s_experiment(config: ExperimentConfig, refresh: tuple[str, ...] = (), rerun_from: tuple[str, ...] = ()) -> dict:
    with tracking.parent_run(config, flow_run.get_id(), f"{config.method.name}-seed{config.seed}") as run:
        return run_experiment(config, run, refresh, rerun_from)


def ingest_sources(
    stage: StageRunner, config: ExperimentConfig, strong: BackboneConfig | None = None, weak: BackboneConfig | None = None,
) -> list[SourceSplits]:
    """Every source's splits. A real dataset is read once, embedded once per backbone (the
    strong side's for its features, the weak side's, if it names one, for the weak view),
    then split with the seed; generated sources are drawn split by split. ``strong`` and
    ``weak``: the backbones, if not the config's sides' (a ladder names them per model)."""
    data = config.data
    if data.kind != "dataset":
        task = data.task if data.kind == "synthetic" else None
        return [stage(ingest, source=s, task=task, splits=data.splits, seed=config.seed) for s in data.sources]
    strong, weak = strong or config.strong.backbone, weak or config.weak.backbone
    splits = []
    for source in data.sources:
        # A hub source's revision is pinned to the commit it names now: that commit is in the key.
        pinned, fingerprint = resolve_source(source)
        rows = stage(ingest_dataset, source=pinned, data_fingerprint=fingerprint)
        embedded, weak_embedded = (embedding(stage, b, rows) for b in (strong, weak))
        splits.append(stage(
            make_splits, weak_view=data.weak_view, splits=data.splits, balance=source.balance, seed=config.seed,
            data=rows, embedded=embedded, weak_embedded=weak_embedded,
        ))
    check_same_classes(splits)
    return splits


def embedding(stage: StageRunner, backbone: BackboneConfig | None, rows: DatasetRows) -> Embedding | None:
    """A backbone's frozen features of every row (cached once per data and backbone), or None."""
    if backbone is None:
        return None
    encoder = backbone.encoder
    return stage(embed, backbone=encoder, weights=backbone_fingerprint(encoder.name), data=rows)


@dataclass(frozen=True)
class ExperimentOutputs:
    """What a run reports from its DAG."""

    sources: list[SourceSplits]
    overlap: OverlapDiagnostic
    selection: Selection
    evaluation: Evaluation


def experiment_stages(stage, config: ExperimentConfig) -> ExperimentOutputs:
    """The DAG's wiring for one config: which stage consumes which. ``stage`` runs them (a
    StageRunner), only says what running them would do (a Planner), or lists them."""
    seed = config.seed
    sources = ingest_sources(stage, config)
    check_budget(config.selection, sources)
    weak = stage(train_weak, **weak_model(config.weak), seed=seed, sources=sources)
    labels = stage(weak_label, weak=weak, sources=sources)
    # A side's backbone settings reach its stages only when it trains the backbone itself
    # (else the features, by the splits' fingerprint, are all a head's key needs).
    finetune = config.strong.finetuned
    ceiling = stage(train_ceiling, ceiling=config.ceiling.head(), seed=seed, sources=sources, finetune=finetune)
    overlap = stage(detect_overlap, overlap=config.overlap, labels=labels, sources=sources)
    selection = stage(
        select_sources, selection=config.selection.as_read(), overlap=config.overlap, seed=seed, labels=labels,
        sources=sources,
    )
    method = config.method_params
    teachers = []
    if TEACHERS in METHODS[method.name].needs:  # each level of specialists is cached like the weak model
        teachers = [
            stage(train_teachers, weak=config.weak.head(), n_teachers=n, by=method.by, seed=seed, sources=sources,
                  label=f"teachers_{n}")
            for n in method.specialist_levels()
        ]
    student = stage(
        train_strong, strong=config.strong.head(), method=method, seed=seed,
        selection=selection, labels=labels, sources=sources, teachers=teachers, finetune=finetune,
    )
    evaluation = stage(evaluate, weak=weak, ceiling=ceiling, student=student, sources=sources)
    return ExperimentOutputs(sources=sources, overlap=overlap, selection=selection, evaluation=evaluation)


def run_experiment(
    config: ExperimentConfig, run: RunContext, refresh: tuple[str, ...] = (), rerun_from: tuple[str, ...] = ()
) -> dict:
    """One config's DAG, reporting to ``run``: the body of the flow, and of each cell of a
    study or sweep that runs many configs over shared cached stages."""
    stage = StageRunner(run, Forcing(frozenset(refresh), frozenset(rerun_from)))
    out = experiment_stages(stage, config)
    evaluation = out.evaluation.info
    data = data_facts(out.sources)
    tracking.record_outcome(run, evaluation.metrics, stage.records, [out.evaluation.plot], data_tags(data))
    return {
        "metrics": evaluation.metrics,
        "method": config.method.name,
        "backbones": {side: {"name": b.name, "mode": b.mode} for side in ("weak", "strong")
                      if (b := getattr(config, side).backbone) is not None},
        "select_on": evaluation.select_on,
        "overlap": out.overlap.info.sources,
        "selection": out.selection.info.model_dump(),
        "data": data,
        "stages": stage.records,
        "mlflow_run_id": run.parent_run_id,
        "config_hash": config.fingerprint(),
    }


DATA_FACTS = ("source", "sizes", "test_from", "benchmark", "revision", "empty_dropped")


def weak_model(weak: ModelConfig) -> dict:
    """train_weak's model arguments: the head on the weak view's features (a backbone's, if
    the weak side names one), or the weak backbone itself when it trains it."""
    return {"weak": weak.head(), "finetune": weak.finetuned}


def data_facts(sources: list[SourceSplits]) -> list[dict]:
    """Where each real source's rows came from: split sizes, the test split's origin, a hub
    commit, empty texts dropped. Generated sources have none of this."""
    facts = [m.info.model_dump(include=set(DATA_FACTS)) for m in sources]
    return [f for f in facts if f["test_from"] is not None]


def data_tags(data: list[dict]) -> dict[str, str]:
    """The parent run's record of where each real source's rows came from (a hub commit is
    what makes two runs' numbers comparable)."""
    tags = {}
    for d in data:
        prefix = f"w2s.data.{d['source']}"
        tags[f"{prefix}.test_from"] = d["test_from"]
        tags[f"{prefix}.empty_dropped"] = d["empty_dropped"]
        if d["benchmark"]:
            tags[f"{prefix}.benchmark"] = d["benchmark"]
        if d["revision"]:
            tags[f"{prefix}.revision"] = d["revision"]
    return tags
