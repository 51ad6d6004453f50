"""Every strong-training method through the experiment flow, and the methods study."""

import json
from pathlib import Path

import pytest
import yaml

from flows.config import load_config
from models.methods import METHODS
from flows.experiment import w2s_experiment
from flows.methods_study import methods_study
from flows.study_config import MethodsStudyConfig
from tasks import tracking

pytestmark = pytest.mark.usefixtures("prefect_harness")
HERE = Path(__file__).parent
UPSTREAM = ("ingest", "train_weak", "weak_label", "train_ceiling", "detect_overlap", "select_sources")


def _params(run_id: str) -> dict:
    return tracking.client().get_run(run_id).data.params


@pytest.mark.parametrize("method", METHODS)
def test_every_method_runs_on_the_binary_mixture_and_is_tracked(method):
    # On its defaults: two classes and two sources make csl's specialists one per source.
    config = load_config(HERE / "small.yaml", [f"method={method}", "seed=201"])
    result = w2s_experiment(config)
    # overlap_only learns from the few points detected as overlap in this small pool.
    floor = 0.4 if method == "overlap_only" else 0.6
    assert floor < result["metrics"]["acc_w2s"] <= 1.0
    assert result["method"] == method
    params = _params(result["mlflow_run_id"])
    assert params["method"] == method
    if method == "aux_conf":
        assert params["method.alpha_max"] == "0.75"
    stages = tracking.client().search_runs(
        [tracking.client().get_run(result["mlflow_run_id"]).info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{result['mlflow_run_id']}' and tags.`w2s.stage` = 'train_strong'",
    )
    assert [s.data.params["method"] for s in stages] == [method]  # seed 201 is this test's alone: computed


def test_csl_on_class_blocks_caches_its_teachers_and_reuses_upstream():
    base = ["seed=202"]
    xent = w2s_experiment(load_config(HERE / "blocks.yaml", base))
    assert xent["metrics"]["acc_ceiling"] > xent["metrics"]["acc_weak"] + 0.1
    csl = w2s_experiment(load_config(HERE / "blocks.yaml", [*base, "method=csl"]))
    stages = csl["stages"]
    assert all(stages[s]["cached"] for s in UPSTREAM)  # a method change recomputes no upstream stage
    assert not stages["teachers_2"]["cached"] and not stages["teachers_4"]["cached"]
    # Another csl variant reuses the teacher levels it shares.
    lg = w2s_experiment(load_config(HERE / "blocks.yaml", [*base, "method=csl", "method.local_global=true"]))
    assert lg["stages"]["teachers_2"]["cached"] and lg["stages"]["teachers_4"]["cached"]
    assert not lg["stages"]["train_strong"]["cached"]


def test_oracle_selection_is_labelled():
    result = w2s_experiment(load_config(HERE / "small.yaml", ["seed=201", "strong.select_on=oracle_val"]))
    assert result["select_on"] == "oracle_val"


def test_methods_study_table_pairs_seeds_and_shares_upstream(tmp_path):
    settings = {
        "binary": {"data": load_config(HERE / "small.yaml").data.model_dump(mode="json"), "selection": {"rounds": 6, "pull_size": 40}},
        "blocks": {k: v for k, v in yaml.safe_load((HERE / "blocks.yaml").read_text()).items() if k != "experiment"},
    }
    variants = {"xent": {"method": "xent"}, "aux_conf": {"method": "aux_conf"}, "csl_2": {"method": {"name": "csl", "teachers": [1, 2]}}}
    config = MethodsStudyConfig(
        experiment="w2s-tests-methods", seeds=2, settings=settings, variants=variants, skip={"binary": ("csl_2",)}
    )
    result = methods_study(config, str(tmp_path))
    assert len(result["cells"]) == 2 * 3 + 2 * 2
    # The weak model is trained once per (setting, seed), not once per variant.
    assert result["stages"]["train_weak"]["computed"] == 4
    assert result["stages"]["train_weak"]["runs"] == 10
    table = (tmp_path / "methods_study.md").read_text()
    assert "**binary** (2 seeds)" in table and "| csl_2 | csl |" in table and "weak_val" in table
    assert "| csl_2 | csl |" not in table.split("**blocks**")[0]
    rows = json.loads((tmp_path / "methods_study.json").read_text())["rows"]
    aux = next(r for r in rows if r["setting"] == "binary" and r["variant"] == "aux_conf")
    assert aux["vs_xent"]["wins"] + aux["vs_xent"]["losses"] + aux["vs_xent"]["ties"] == 2
    assert aux["seeds"] == [0, 1]
    # Rerunning the study recomputes nothing, not even its report.
    again = methods_study(config)
    assert all(s["cached"] for s in again["stages"].values())
    assert "report_methods_study" in again["stages"]
    # Each cell is its own MLflow run, nested in the study's, with its config hash recorded.
    c = tracking.client()
    cell = c.get_run(result["cells"][0]["mlflow_run_id"])
    assert cell.data.tags["mlflow.parentRunId"] == result["mlflow_run_id"]
    assert cell.data.tags["w2s.config_hash"] == result["cells"][0]["config_hash"]
    assert cell.data.tags["w2s.variant"] == "xent"


def test_methods_study_refuses_a_cell_that_cannot_run():
    from pydantic import ValidationError

    # Three levels of class blocks cannot run on two classes.
    blocks = {"method": {"name": "csl", "by": "classes", "teachers": [1, 2, 4]}}
    with pytest.raises(ValidationError, match="setting 'mixture', variant 'csl': .*4 teachers but the data has 2 classes"):
        MethodsStudyConfig(settings={"mixture": {}}, variants={"xent": {"method": "xent"}, "csl": blocks}, skip={})


def test_a_study_variant_is_checked_on_its_settings_data_and_for_method_must_be_a_mapping():
    from pydantic import ValidationError

    from flows.study_config import DEFAULT_SETTINGS

    # Three levels of class blocks are valid on the 8-class setting, though not on the defaults' 2 classes.
    blocks = {"method": {"name": "csl", "teachers": [1, 2, 4]}}
    study = MethodsStudyConfig(settings={"class_blocks": DEFAULT_SETTINGS["class_blocks"]},
                               variants={"xent": {"method": "xent"}, "csl": blocks}, skip={})
    assert study.cell("class_blocks", "csl", 0).method.teachers == (1, 2, 4)
    for malformed in (["csl"], {"csl": 3}):
        with pytest.raises(ValidationError, match="settings.s.for_method: give a mapping of method names"):
            MethodsStudyConfig(settings={"s": {"for_method": malformed}}, skip={})


def test_a_ladder_that_fine_tunes_refuses_a_method_that_cannot():
    from pydantic import ValidationError

    from flows.study_config import LadderConfig

    for method in ("probe_filter", "bootstrap"):
        with pytest.raises(ValidationError, match=f"method: {method} cannot fine-tune a backbone .*use one of xent"):
            LadderConfig(models=("minilm:1", "minilm"), mode="finetune", overrides=(f"method={method}",))
    assert LadderConfig(models=("minilm:1", "minilm"), mode="probe", overrides=("method=probe_filter",))


def test_the_default_methods_train_five_different_students():
    """xent, xent_hard, aux_conf, adapt_conf and csl on their defaults, with the default
    full-batch L-BFGS student: five different students (aux_conf was xent's twin when early
    stopping chose an epoch before its warm-up ended)."""
    results = {m: w2s_experiment(load_config(HERE / "small.yaml", [f"method={m}", "seed=203"]))
               for m in ("xent", "xent_hard", "aux_conf", "adapt_conf", "csl")}
    scores = {m: (r["metrics"]["acc_w2s"], r["metrics"]["auroc_w2s"]) for m, r in results.items()}
    assert len(set(scores.values())) == 5, scores
    assert all(r["metrics"]["acc_w2s"] > 0.6 for r in results.values()), scores
