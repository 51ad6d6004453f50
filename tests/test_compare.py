"""``compare_runs`` over a store filled by the real experiment flow, plus hand-made runs for edge cases."""

import time
from pathlib import Path

import pytest
from prefect import flow

from flows import tracking as flow_tracking
from flows.compare import compare_runs
from flows.config import load_config
from flows.experiment import run_experiment, w2s_experiment
from models.metrics import HEADLINE_METRICS
from tasks import tracking

pytestmark = pytest.mark.usefixtures("prefect_harness")
HERE = Path(__file__).parent
EXPERIMENT = "w2s-tests-compare"
EDGE = "w2s-tests-compare-edge"


@flow(name="w2s-tests-sweep")
def _sweep(configs: dict, name: str) -> dict:
    """A sweep as the sweep flow records one: a parent run with its own figures, a cell run
    per config nested in it, all tagged with the sweep's name."""
    base = next(iter(configs.values()))
    with flow_tracking.parent_run(base, None, f"sweep-{name}", tags={"w2s.sweep": name}) as parent:
        cells = {}
        for label, config in configs.items():
            tags = {"w2s.sweep": name, "w2s.cell": label}
            with flow_tracking.parent_run(config, None, label, within=parent, tags=tags) as cell:
                cells[label] = run_experiment(config, cell)
        flow_tracking.record_outcome(parent, {"cells": len(cells)}, {}, [])
    return {"parent": parent.parent_run_id, "cells": cells}


@pytest.fixture(scope="module")
def store():
    """Two plain runs (xent, aux_conf) and a two-cell sweep (xent, overlap_only), one seed:
    after the first run only the strong model and its evaluation are computed again."""
    def config(method):
        # A seed of its own: other tests count the weak models they train on small.yaml.
        return load_config(HERE / "small.yaml", [f"method={method}", f"experiment={EXPERIMENT}", "seed=401"])

    xent = w2s_experiment(config("xent"))
    aux = w2s_experiment(config("aux_conf"))
    sweep = _sweep({"xent": config("xent"), "overlap_only": config("overlap_only")}, "nightly")
    return {"plain": [xent, aux], "sweep": sweep, "all": [xent, aux, *sweep["cells"].values()]}


def test_shows_what_differs_with_the_flows_metrics(store, tmp_path):
    result = compare_runs(EXPERIMENT, out_dir=tmp_path)
    # Oldest first; stage runs and the sweep's parent (no metrics) are not compared.
    assert [r["run_id"] for r in result.runs] == [x["mlflow_run_id"] for x in store["all"]]
    assert result.metrics == list(HEADLINE_METRICS)
    for run, flow_result in zip(result.runs, store["all"]):
        assert "w2s.stage" not in run["tags"]
        for m in HEADLINE_METRICS:
            assert run["metrics"][m] == pytest.approx(flow_result["metrics"][m], rel=1e-12)
        assert run["params"]["method"] == flow_result["method"]
    assert "method" in result.varying and "weak.C" not in result.varying
    assert result.varying == sorted(result.varying)
    header, rule, *rows = result.table.splitlines()
    assert header.split()[:3] == ["run", "id", "method"]  # every run FINISHED: no status column
    assert "weak.C" not in header and "status" not in header and "pgr" in header
    assert len(rows) == 4 and set(rule) <= {"-", " "}
    aux = store["plain"][1]
    row = next(r for r in rows if aux["mlflow_run_id"][:8] in r)
    assert row.startswith("aux_conf-seed401") and f"{aux['metrics']['pgr']:.3f}" in row.split()
    png = result.plot.read_bytes()
    assert result.plot == tmp_path / "compare.png" and png.startswith(b"\x89PNG") and len(png) > 10_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["compare.png"]  # no temporary file left


def test_tag_filter_selects_the_sweep_cells(store):
    cells = store["sweep"]["cells"]
    result = compare_runs(EXPERIMENT, {"w2s.sweep": "nightly"}, metrics=["pgr", "pgr_auroc"])
    assert [r["run_id"] for r in result.runs] == [c["mlflow_run_id"] for c in cells.values()]
    assert result.varying == ["method"]  # the cells differ in nothing else
    assert result.metrics == ["pgr", "pgr_auroc"] and "acc_w2s" not in result.table
    assert [r["tags"]["w2s.cell"] for r in result.runs] == ["xent", "overlap_only"]
    one = compare_runs(None, {"w2s.sweep": "nightly", "w2s.cell": "overlap_only"})
    assert [r["run_id"] for r in one.runs] == [cells["overlap_only"]["mlflow_run_id"]]
    assert one.varying == [] and one.plot is None
    # Asked for, the sweep parent's own figure selects it alone.
    parent = compare_runs(EXPERIMENT, {"w2s.sweep": "nightly"}, metrics=["cells"])
    assert [r["run_id"] for r in parent.runs] == [store["sweep"]["parent"]]


def test_limit_keeps_the_newest(store):
    result = compare_runs(EXPERIMENT, limit=2)
    assert [r["run_id"] for r in result.runs] == [c["mlflow_run_id"] for c in store["sweep"]["cells"].values()]


def test_lookup_errors_name_what_was_not_found(store):
    with pytest.raises(LookupError, match=f"experiment 'nope' not found \\(experiments: .*{EXPERIMENT}"):
        compare_runs("nope")
    with pytest.raises(LookupError, match="unknown metric bogus \\(metrics: .*acc_w2s"):
        compare_runs(EXPERIMENT, metrics=["pgr", "bogus"])
    # A stage's child run logs val_acc; it is no run to compare, so its metrics are unknown here.
    with pytest.raises(LookupError, match="unknown metric val_acc "):
        compare_runs(EXPERIMENT, metrics=["val_acc"])
    with pytest.raises(LookupError, match=f"no runs match experiment '{EXPERIMENT}', w2s.sweep=weekly"):
        compare_runs(EXPERIMENT, {"w2s.sweep": "weekly"})


def test_unfinished_runs_show_their_status_and_quoted_tags_match(tmp_path):
    c = tracking.client()
    experiment = tracking.experiment_id(c, EDGE)
    made = []
    runs = [("a", "FINISHED", "it's", 0.5), ("b", "RUNNING", "it's", 0.75), ("c", "FINISHED", "x", 0.9)]
    for name, status, sweep, acc in runs:
        run = c.create_run(experiment, tags={"mlflow.runName": name, "w2s.sweep": sweep})
        tracking.log_params(c, run.info.run_id, {"lr": name, "same": 1, "long": "v" * 100 + name})
        tracking.log_metrics(c, run.info.run_id, {"acc_w2s": acc})
        if status == "FINISHED":
            c.set_terminated(run.info.run_id, status)
        made.append(run.info.run_id)
        time.sleep(0.01)  # distinct start times
    # Neither a parent without the metrics asked for nor a stage's run is a run to compare.
    c.set_terminated(c.create_run(experiment, tags={"mlflow.runName": "parent", "w2s.sweep": "it's"}).info.run_id)
    stage = c.create_run(experiment, tags={"mlflow.runName": "evaluate", "w2s.sweep": "it's", "w2s.stage": "evaluate"})
    tracking.log_metrics(c, stage.info.run_id, {"acc_w2s": 0.1})

    result = compare_runs(EDGE, {"w2s.sweep": "it's"}, metrics=["acc_w2s"], out_dir=tmp_path / "new")
    assert [r["run_id"] for r in result.runs] == made[:2]
    assert [r["status"] for r in result.runs] == ["FINISHED", "RUNNING"]
    assert result.varying == ["long", "lr"]
    header, _, first, second = result.table.splitlines()
    assert header.split() == ["run", "id", "status", "long", "lr", "acc_w2s"]
    assert second.split()[2:] == ["RUNNING", "v" * 11 + "…" + "v" * 11 + "b", "b", "0.750"]
    assert (tmp_path / "new" / "compare.png").stat().st_size > 5_000
    with pytest.raises(LookupError, match="unknown metric pgr \\(metrics: acc_w2s\\)"):
        compare_runs(EDGE, metrics=["pgr"])
    with pytest.raises(LookupError, match=f"no runs match experiment '{EDGE}', mlflow.runName=parent with any of "
                       "the metrics acc_weak, acc_ceiling, acc_w2s, pgr"):
        compare_runs(EDGE, {"mlflow.runName": "parent"})
