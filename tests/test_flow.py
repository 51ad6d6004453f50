"""The experiment flow under Prefect's test harness: caching, reuse, refresh and MLflow records."""

import math
from pathlib import Path

import pytest

from flows.config import load_config
from flows.experiment import w2s_experiment
from flows.plan import stage_names
from models.methods import METHODS
from tasks import tracking

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _cached(result):
    return {name: r["cached"] for name, r in result["stages"].items()}


@pytest.fixture(scope="module")
def first_run():
    # A seed no other test uses, so the first run really computes every stage.
    config = load_config(Path(__file__).parent / "small.yaml", ["seed=101"])
    return config, w2s_experiment(config)


def test_first_run_computes_every_stage_with_a_sensible_result(first_run):
    config, result = first_run
    # A generated source is drawn split by split: the real-data stages do not run.
    assert list(result["stages"]) == stage_names(config) == [
        "ingest", "train_weak", "weak_label", "train_ceiling", "detect_overlap", "select_sources", "train_strong", "evaluate"
    ]
    assert not any(_cached(result).values())
    m = result["metrics"]
    assert m["acc_weak"] > 0.6  # beats chance
    assert m["acc_ceiling"] > m["acc_weak"]
    assert math.isfinite(m["pgr"])
    assert {"acc_hard_weak", "acc_hard_w2s", "agreement_teacher_wrong"} <= set(m)


def test_identical_rerun_is_all_cache_hits(first_run):
    config, result = first_run
    again = w2s_experiment(config)
    assert all(_cached(again).values())
    assert again["metrics"] == result["metrics"]


def test_method_change_reuses_upstream(first_run):
    config, _ = first_run
    changed = w2s_experiment(config.model_copy(update={"method": METHODS["overlap_only"].Params()}))
    cached = _cached(changed)
    assert all(cached[s] for s in ("ingest", "train_weak", "weak_label", "train_ceiling", "detect_overlap", "select_sources"))
    assert not cached["train_strong"] and not cached["evaluate"]


def test_refresh_recomputes_the_stage_and_downstream_only_if_its_output_changed(first_run):
    config, result = first_run
    refreshed = w2s_experiment(config, refresh=("weak_label",))
    cached = _cached(refreshed)
    assert not cached["weak_label"]
    # Labelling is deterministic: the same labels come out, so nothing after it reruns.
    assert all(cached[s] for s in cached if s != "weak_label")
    assert refreshed["metrics"] == result["metrics"]


def test_rerun_from_recomputes_the_stage_and_everything_downstream(first_run):
    config, result = first_run
    rerun = w2s_experiment(config, rerun_from=("weak_label",))
    cached = _cached(rerun)
    assert cached["ingest"] and cached["train_weak"] and cached["train_ceiling"]
    assert not any(cached[s] for s in ("weak_label", "detect_overlap", "select_sources", "train_strong", "evaluate"))
    assert rerun["metrics"] == result["metrics"]  # deterministic recomputation


def test_deleted_artifact_behind_a_cache_record_is_recomputed(first_run):
    import shutil

    from tasks.stage import artifact_dir

    config, result = first_run
    run = tracking.client().get_run(result["mlflow_run_id"])
    weak_runs = tracking.client().search_runs(
        [run.info.experiment_id],
        f"tags.mlflow.parentRunId = '{run.info.run_id}' and tags.`w2s.stage` = 'train_weak'",
    )
    key = weak_runs[0].data.tags["w2s.cache_key"]
    shutil.rmtree(artifact_dir("train_weak", key))
    again = w2s_experiment(config)
    cached = _cached(again)
    assert not cached["train_weak"]  # detected, recomputed: no failure downstream
    assert cached["ingest"] and cached["weak_label"]  # same weights, same labels: the rest stays cached
    assert again["metrics"] == result["metrics"]
    assert artifact_dir("train_weak", key).is_dir()


def test_mlflow_holds_parent_and_child_runs(first_run):
    _, result = first_run
    c = tracking.client()
    parent = c.get_run(result["mlflow_run_id"])
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["acc_w2s"] == pytest.approx(result["metrics"]["acc_w2s"])
    assert parent.data.params["method"] == "xent"
    assert parent.data.tags["w2s.cache_hits"] == "none"
    children = c.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    names = {r.data.tags["w2s.stage"] for r in children}
    assert {"train_weak", "train_ceiling", "train_strong", "evaluate"} <= names
    weak = next(r for r in children if r.data.tags["w2s.stage"] == "train_weak")
    history = c.get_metric_history(weak.info.run_id, "val_loss")
    assert len(history) >= 1 and [h.step for h in history] == sorted(h.step for h in history)
    artifacts = [a.path for a in c.list_artifacts(parent.info.run_id)]
    assert "config.yaml" in artifacts and "accuracy_by_group.png" in artifacts


def test_detector_choice_reaches_detection_and_selection_only(first_run):
    config, result = first_run
    assert result["overlap"] and config.overlap.detector == "mixture_energy"
    paper = w2s_experiment(config.model_copy(update={"overlap": config.overlap.model_copy(update={"detector": "paper"})}))
    cached = _cached(paper)
    assert all(cached[s] for s in ("ingest", "train_weak", "weak_label", "train_ceiling"))
    assert not cached["detect_overlap"] and not cached["select_sources"]
    # On the small config's sources the paper's detector is the weaker one.
    assert sum(s["overlap_f1"] for s in result["overlap"]) > sum(s["overlap_f1"] for s in paper["overlap"])
