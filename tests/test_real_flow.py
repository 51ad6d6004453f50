"""Real data through the experiment flow: what is cached across methods, seeds and backbones."""

import numpy as np
import pandas as pd
import pytest

from flows.config import load_config
from flows.experiment import w2s_experiment
from tasks import tracking

pytestmark = pytest.mark.usefixtures("prefect_harness")

TOPICS = {
    "sport": ["the match", "our team", "the striker", "a late goal", "the coach", "the final whistle", "the league"],
    "food": ["the soup", "this recipe", "fresh bread", "the chef", "a ripe tomato", "the dessert", "dinner"],
}
VERBS = ["was great", "surprised everyone", "went badly", "made my day", "was discussed all week", "felt slow"]


def _text_csv(path, n=240, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        topic = ["sport", "food"][i % 2]
        rows.append({"review": f"{rng.choice(TOPICS[topic])} {rng.choice(VERBS)}", "topic": topic})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _run(*overrides):
    return w2s_experiment(load_config(None, list(overrides)))


def test_a_method_change_on_text_recomputes_neither_embeddings_nor_the_weak_model(tmp_path):
    csv = _text_csv(tmp_path / "reviews.csv")
    base = [f"source.path={csv}", "source.label_column=topic", "source.text_column=review", "strong.backbone.name=minilm", "seed=11"]
    first = _run(*base)
    assert not first["stages"]["embed"]["cached"]
    assert first["metrics"]["acc_ceiling"] > 0.9  # MiniLM separates the two topics
    other = _run(*base, "method=aux_conf")
    cached = {name for name, r in other["stages"].items() if r["cached"]}
    assert {"ingest_dataset", "embed", "make_splits", "train_weak", "weak_label", "train_ceiling"} <= cached
    assert not other["stages"]["train_strong"]["cached"]
    # Another seed splits the rows anew, but the rows' embeddings are the same stage.
    seed = _run(*base[:-1], "seed=12")
    assert seed["stages"]["embed"]["cached"] and not seed["stages"]["make_splits"]["cached"]
    # An edited file is new data: read and embedded again.
    _text_csv(csv, seed=1)
    edited = _run(*base)
    assert not edited["stages"]["ingest_dataset"]["cached"] and not edited["stages"]["embed"]["cached"]


def _stage_metrics(result: dict, stage: str) -> dict:
    c = tracking.client()
    experiment = c.get_run(result["mlflow_run_id"]).info.experiment_id
    runs = c.search_runs(
        [experiment], f"tags.mlflow.parentRunId = '{result['mlflow_run_id']}' and tags.`w2s.stage` = '{stage}'"
    )
    assert len(runs) == 1
    return runs[0].data.metrics


def test_a_vision_backbone_by_path_embeds_images_for_the_strong_side(tiny_vit):
    result = _run("source=digits", f"strong.backbone.name={tiny_vit}", "source.max_rows=300", "ceiling.arch=linear", "strong.arch=linear")
    assert not result["stages"]["embed"]["cached"]
    # The strong side sees the ViT's 32 features; the weak side the 4x4 pooled image.
    assert _stage_metrics(result, "embed")["dim"] == 32
    splits = _stage_metrics(result, "make_splits")
    assert splits["d"] == 32 and splits["d_weak"] == 16


def test_a_budget_larger_than_a_real_pool_names_the_source(tmp_path):
    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(150, 3)), columns=["a", "b", "c"]).assign(y=[0, 1] * 75)
    frame.to_csv(tmp_path / "small.csv", index=False)
    with pytest.raises(ValueError, match=r"exceeds the pool of source 'data' \(80 points"):
        _run(f"source.path={tmp_path / 'small.csv'}", "source.label_column=y", "selection.policy=ucb1")


@pytest.mark.slow
def test_finetune_mode_trains_the_backbone_with_lora_and_keeps_frozen_features_for_overlap(tmp_path):
    csv = _text_csv(tmp_path / "reviews.csv", n=160)
    base = [
        f"source.path={csv}", "source.label_column=topic", "source.text_column=review", "strong.backbone.name=minilm",
        "strong.backbone.mode=lora", "strong.backbone.finetune_epochs=1", "strong.backbone.finetune_batch_size=32",
        "strong.backbone.finetune_lr=0.001", "seed=5",
    ]
    result = _run(*base)
    assert 0.5 < result["metrics"]["acc_ceiling"] <= 1.0
    assert not result["stages"]["embed"]["cached"]  # overlap detection reads the frozen backbone's features
    other = _run(*base, "method=xent_hard")
    cached = {name for name, r in other["stages"].items() if r["cached"]}
    assert {"embed", "train_weak", "train_ceiling"} <= cached and "train_strong" not in cached


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ucla_courses", "spam7", "digits"])
def test_each_bundled_source_runs_by_name_offline_with_a_real_gap(name):
    result = _run(f"source={name}")
    m = result["metrics"]
    assert m["acc_ceiling"] - m["acc_weak"] >= 0.05, m
    assert result["selection"]["policy"] == "all"


def test_the_multi_domain_source_gives_the_bandit_three_sources():
    config = load_config(None, ["source=ucla_levels"])
    assert [s.filter_values for s in config.data.sources] == [("lower",), ("upper",), ("graduate",)]
    assert config.selection.policy == "ucb1"
    csl = load_config(None, ["source=ucla_levels", "method=csl", "method.by=sources"]).method_params
    assert csl.teachers == (1, 3)  # one specialist per level
