"""Pretrained models on each side, and the model ladder: tiny decoder LMs built here (random
weights, saved as a hub download would be) stand in for GPT-2 and Llama checkpoints."""

import json

import numpy as np
import pandas as pd
import pytest
from cli_helpers import run_w2s

from flows.config import load_config
from flows.experiment import w2s_experiment
from flows.ladder import ladder
from flows.study_config import LadderConfig

pytestmark = pytest.mark.usefixtures("prefect_harness")

WORDS = ["the", "match", "team", "coach", "soup", "recipe", "chef", "was", "great", "poor", "our", "this"]


@pytest.fixture(scope="module")
def texts(tmp_path_factory):
    """Short sports and food sentences (topic decided by one word, plus noise words)."""
    rng = np.random.default_rng(0)
    topic_words = {"sport": ["match", "team", "coach"], "food": ["soup", "recipe", "chef"]}
    rows = []
    for i in range(240):
        topic = ["sport", "food"][i % 2]
        words = [*rng.choice(["the", "our", "this"], 2), rng.choice(topic_words[topic]), "was", rng.choice(["great", "poor"])]
        rows.append({"text": " ".join(words), "label": topic})
    path = tmp_path_factory.mktemp("texts") / "topics.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _source(texts) -> list[str]:
    return [f"source.path={texts}", "source.label_column=label", "source.text_column=text", "selection.policy=all",
            "data.splits={weak_train: 1, w2s_train: 2, val: 0.5, test: 1}"]


def _computed(stages: dict, prefix: str) -> int:
    return sum(r["computed"] for name, r in stages.items() if name.startswith(prefix))


def test_n_models_cost_n_fits_and_the_pairs_students_and_a_longer_list_only_its_additions(texts, tiny_decoder):
    small, medium, large = (str(tiny_decoder("gpt2", words=WORDS, layers=n)) for n in (1, 2, 3))
    base = dict(overrides=_source(texts), seeds=1, experiment="w2s-tests")
    first = ladder(LadderConfig(models=(small, medium), **base))
    assert _computed(first["stages"], "truth ") == 2 and _computed(first["stages"], "train_strong") == 1
    assert [(c["weak"], c["strong"]) for c in first["cells"]] == [(small, medium)]

    longer = ladder(LadderConfig(models=(small, medium, large), **base))
    stages = longer["stages"]
    assert _computed(stages, "truth ") == 1 and not stages[f"truth {large}"]["cached"]  # only the new model
    assert _computed(stages, "train_strong") == 2  # small -> large and medium -> large; small -> medium is cached
    assert _computed(stages, "labels ") == 1  # medium teaches now; small's labels were made before
    assert {(c["weak"], c["strong"]) for c in longer["cells"]} == {(small, medium), (small, large), (medium, large)}
    for cell in longer["cells"]:
        assert 0 <= cell["acc_w2s"] <= 1 and np.isfinite(cell["acc_weak"]) and np.isfinite(cell["acc_ceiling"])
    # The same model's ground-truth fit is the teacher of larger models and the ceiling of smaller ones.
    by_pair = {(c["weak"], c["strong"]): c for c in longer["cells"]}
    assert by_pair[(medium, large)]["acc_weak"] == by_pair[(small, medium)]["acc_ceiling"]


@pytest.mark.slow
def test_the_ladder_command_writes_its_table_heatmap_and_one_mlflow_run_per_pair(tmp_path, texts, tiny_decoder):
    small, large = (str(tiny_decoder("gpt2", words=WORDS, layers=n)) for n in (1, 2))
    home, out = tmp_path / "home", tmp_path / "out"
    done = run_w2s(home, "ladder", f"models={small},{large}", "seeds=2", *_source(texts), "--out", str(out), "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert {p.name for p in out.iterdir()} == {"ladder.md", "ladder.png", "ladder.json"}
    table = (out / "ladder.md").read_text()
    assert f"| {small} | {large} |" in table and "2 seed(s)" in table
    assert len(result["cells"]) == 2  # one pair, two seeds

    from mlflow.tracking import MlflowClient

    c = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    parent = c.get_run(result["mlflow_run_id"])
    pairs = c.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}' "
                          "and tags.`w2s.weak_model` != ''")
    assert {r.info.run_id for r in pairs} == {cell["mlflow_run_id"] for cell in result["cells"]}
    assert all(r.data.tags["w2s.strong_model"] == large and "acc_w2s" in r.data.metrics for r in pairs), \
        [(r.data.tags, r.data.metrics) for r in pairs]


def test_decoder_lms_on_both_sides_through_the_flow(texts, tiny_decoder):
    """A GPT-2 teaches a Llama: both read the texts at their last real token (probe mode)."""
    gpt2 = tiny_decoder("gpt2", words=WORDS, layers=2)
    llama = tiny_decoder("llama", words=WORDS, layers=2)
    config = load_config(None, [*_source(texts), f"weak.backbone={gpt2}", f"strong.backbone={llama}", "seed=31"])
    result = w2s_experiment(config)
    assert result["backbones"] == {"weak": {"name": str(gpt2), "mode": "probe"}, "strong": {"name": str(llama), "mode": "probe"}}
    assert {"ingest_dataset", "embed", "make_splits", "train_weak", "train_strong"} <= set(result["stages"])
    assert result["stages"]["embed"]["runs"] == 2  # one per backbone
    m = result["metrics"]
    assert all(0 <= m[k] <= 1 for k in ("acc_weak", "acc_ceiling", "acc_w2s"))


@pytest.mark.slow
def test_a_fine_tuned_weak_decoder_labels_the_pool_for_a_lora_student(texts, tiny_decoder):
    gpt2 = tiny_decoder("gpt2", words=WORDS, layers=2)
    llama = tiny_decoder("llama", words=WORDS, layers=2)
    tuning = ["finetune_epochs=1", "finetune_batch_size=32", "finetune_lr=0.001", "max_length=16"]
    config = load_config(None, [
        *_source(texts), f"weak.backbone={gpt2}", f"strong.backbone={llama}", "weak.backbone.mode=finetune",
        "strong.backbone.mode=lora", *(f"{side}.backbone.{t}" for side in ("weak", "strong") for t in tuning), "seed=32",
    ])
    result = w2s_experiment(config)
    assert result["backbones"]["weak"]["mode"] == "finetune" and result["backbones"]["strong"]["mode"] == "lora"
    from tasks import tracking
    from tasks.stage import artifact_dir

    c = tracking.client()
    parent = c.get_run(result["mlflow_run_id"])

    def fine_tuned(stage) -> bool:
        """Whether the stage's model folder holds a fine-tuned backbone (not a head's weights)."""
        query = f"tags.mlflow.parentRunId = '{parent.info.run_id}' and tags.`w2s.stage` = '{stage}'"
        (run,) = c.search_runs([parent.info.experiment_id], query)
        return (artifact_dir(stage, run.data.tags["w2s.cache_key"]) / "model" / "finetune.json").is_file()

    # The ceiling is the strong model, fine-tuned the same way.
    assert fine_tuned("train_weak") and fine_tuned("train_strong") and fine_tuned("train_ceiling")
    assert all(0 <= result["metrics"][k] <= 1 for k in ("acc_weak", "acc_ceiling", "acc_w2s"))


def test_a_pair_without_a_gap_shows_its_gap_not_a_pgr():
    from tasks.report_ladder import _cell

    no_gap = {"acc_weak": 0.736, "acc_ceiling": 0.725, "pgr": 7.6, "pgr_ci": 9.7, "n_seeds": 5}
    assert _cell(no_gap, "pgr") == "no gap (-0.011)"
    gap = {**no_gap, "acc_ceiling": 0.808, "pgr": 0.09}
    assert _cell(gap, "pgr").startswith("0.09")
