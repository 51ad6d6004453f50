"""Both studies as Prefect flows on tiny grids: tables, claims, caching, MLflow, outputs."""

import json
import math

import pytest

from flows.config import load_config
from flows.overlap_study import overlap_study
from flows.selection_study import selection_study
from flows.study_config import OverlapStudyConfig, SelectionStudyConfig
from tasks import tracking

pytestmark = pytest.mark.usefixtures("prefect_harness")

TINY_OVERLAP = ["seeds=3", "overlap_counts=[5,40]", "detection_check.easy=60", "detection_check.hard=60",
                "detection_check.overlap=60", "experiment=test-overlap-study"]
TINY_SELECTION = ["seeds=2", "rounds=6", "pull_size=10", "pool_size=60", "weak_train_size=60", "test_size=60",
                  "policies=[ucb1,random,oracle]", "experiment=test-selection-study"]


@pytest.fixture(scope="module")
def overlap_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    config = load_config(None, TINY_OVERLAP, OverlapStudyConfig)
    return config, out, overlap_study(config, str(out))


def test_overlap_study_reports_every_variant_per_grid_point(overlap_run):
    _, out, result = overlap_run
    rows = result["rows"]
    assert [r["label"] for r in rows] == ["0.024", "0.167", "60/60/60"]
    assert rows[-1]["ratio"] == pytest.approx(1 / 3)
    for row in rows:
        assert row["n_seeds"] == 3
        for variant in ("weak", "ceiling", "w2s_true_overlap", "w2s_detected_paper", "w2s_detected_mixture_energy", "w2s_all"):
            assert 0.0 <= row[f"acc_{variant}"] <= 1.0 and row[f"acc_{variant}_ci"] >= 0.0
            assert 0.0 <= row[f"hard_{variant}"] <= 1.0
        assert row["acc_ceiling"] > row["acc_weak"] - 0.05
        assert 0.0 <= row["mixture_energy_overlap_f1"] <= 1.0
    # The detector of the project is measured against the paper's on the check cells.
    assert rows[-1]["mixture_energy_overlap_f1"] > rows[-1]["paper_overlap_f1"]
    assert {c["claim"] for c in result["checks"]} >= {"best detector overlap F1 >= 0.6 on 60/60/60"}
    assert sorted(p.name for p in out.iterdir()) == ["overlap_study.json", "overlap_study.md", "overlap_study.png"]
    assert json.loads((out / "overlap_study.json").read_text())["rows"] == json.loads(json.dumps(rows))


def test_overlap_study_is_tracked_and_cached(overlap_run):
    config, _, result = overlap_run
    assert not any(r["cached"] for r in result["stages"].values())
    c = tracking.client()
    parent = c.get_run(result["mlflow_run_id"])
    assert parent.info.status == "FINISHED"
    curve = c.get_metric_history(parent.info.run_id, "acc_w2s_true_overlap")
    assert [m.step for m in curve] == [5, 40]  # one point per grid point, stepped by n_overlap
    assert "overlap_study.png" in [a.path for a in c.list_artifacts(parent.info.run_id)]
    children = c.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert {"weak", "ceiling", "detect_paper", "w2s_all"} <= {r.data.tags["mlflow.runName"] for r in children}

    # One detector fewer: everything is reused except the report.
    again = overlap_study(config.model_copy(update={"detectors": ("mixture_energy",)}))
    cached = {name: r["cached"] for name, r in again["stages"].items()}
    assert not cached.pop("report_overlap_study")
    assert all(cached.values()), cached


def test_selection_study_traces_every_policy(tmp_path):
    config = load_config(None, TINY_SELECTION, SelectionStudyConfig)
    result = selection_study(config, str(tmp_path))
    final = result["final"]
    assert set(final) == {"ucb1", "random", "oracle"}
    assert final["oracle"]["regret"] == 0.0
    assert final["oracle"]["pull_share"] == [0.0, 0.0, 1.0]
    assert math.isnan(final["oracle"]["estimate_0"])  # never pulled: no estimate, not 0
    for policy in final.values():
        assert 0.0 <= policy["acc"] <= 1.0
    curves = json.loads((tmp_path / "selection_study.json").read_text())["curves"]
    assert [r["round"] for r in curves["ucb1"]] == list(range(1, 7))
    regret = [r["regret"] for r in curves["random"]]
    assert regret == sorted(regret)  # cumulative
    assert [c["claim"].split()[0] for c in result["checks"]] == ["ucb1"] * 3
    c = tracking.client()
    history = c.get_metric_history(result["mlflow_run_id"], "ucb1.acc")
    assert [m.step for m in history] == list(range(1, 7))


def test_changing_epsilon_recomputes_epsilon_greedy_alone():
    base = TINY_SELECTION[:-2] + ["policies=[ucb1,epsilon_greedy]", "experiment=test-selection-epsilon"]
    selection_study(load_config(None, base, SelectionStudyConfig))
    again = selection_study(load_config(None, [*base, "epsilon=0.3"], SelectionStudyConfig))
    cached = {name: r["cached"] for name, r in again["stages"].items()}
    assert cached["select_ucb1"] and cached["students_ucb1"]
    assert not cached["select_epsilon_greedy"] and not cached["students_epsilon_greedy"]
