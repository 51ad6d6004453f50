"""End to end through the installed ``w2s`` command, as a user runs it, in a fresh workspace."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SMALL = Path(__file__).parent / "small.yaml"


def _w2s(home: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
    env["W2S_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize(
    "args, names",
    [
        (["run", "strong.methd=xent"], "strong.methd"),
        (["run", "selection.policy=best"], "selection.policy"),
        (["run", "missing.yaml"], "missing.yaml"),
        (["run", "--refresh", "trian_weak"], "trian_weak"),
        (["study", "overlap", "detectors=[paper,best]"], "detectors"),
        (["study", "selection", "rounds=100"], "rounds*pull_size"),
        (["study", "selection", "policy=ucb1"], "policy"),
        (["run", "method=magic"], "method"),
        (["run", "method=csl"], "methods.csl.teachers"),  # (1, 2, 4) teachers, two classes
        (["run", "methods.aux_conf.alpha_max=2"], "methods.aux_conf.alpha_max"),
        (["study", "methods", "baseline=best"], "baseline"),
        (["run", "source=no_such_set"], "no_such_set"),
        (["run", "source.path=/nowhere/data.csv"], "/nowhere/data.csv"),
        (["run", "source=digits", "source.colour=red"], "data.sources.0.colour"),
        (["run", "source=ucla_courses", "backbone.name=null"], "backbone.name"),
        (["run", "source=ucla_levels", "source.max_rows=100"], "data.sources.N.max_rows"),
        (["run", "source=ucla_courses", "data.weak_view.kind=columns"], "data.weak_view"),
        (["run", "source=ucla_courses", "backbone.mode=finetune", "method=csl"], "method"),
        (["run", "--from", "trian_weak"], "trian_weak"),
        (["plan", "weak.C=-1"], "weak.C"),
        (["sweep", "method=xent,magic", "seed=0,1"], "cell method=magic,seed=0"),
        (["sweep", "seed=0,1", "--dask-address", "tcp://127.0.0.1:1", "--runner", "threads"], "dask_address"),
        (["compare", "--filter", "w2s.sweep"], "w2s.sweep"),
        (["compare", "--experiment", "no-such-experiment"], "no-such-experiment"),
        (["serve", "--only", "nightly"], "nightly"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, names):
    done = _w2s(tmp_path / "home", *args, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and names in lines[0] and "Traceback" not in done.stderr
    assert not (tmp_path / "home" / "artifacts").exists()


@pytest.mark.slow
def test_run_twice_second_is_all_cached_and_mlflow_has_the_runs(tmp_path):
    home = tmp_path / "home"
    first = _w2s(home, "run", str(SMALL), "--json")
    assert first.returncode == 0, first.stderr[-2000:]
    one = json.loads(first.stdout)
    assert {"acc_weak", "acc_ceiling", "acc_w2s", "pgr"} <= set(one["metrics"])
    assert not any(s["cached"] for s in one["stages"].values())

    second = _w2s(home, "run", str(SMALL), "--json")
    assert second.returncode == 0, second.stderr[-2000:]
    two = json.loads(second.stdout)
    assert all(s["cached"] for s in two["stages"].values())
    assert two["metrics"] == one["metrics"] and two["mlflow_run_id"] != one["mlflow_run_id"]

    # Another method recomputes the student and its evaluation only.
    aux = _w2s(home, "run", str(SMALL), "method=aux_conf")
    assert aux.returncode == 0, aux.stderr[-2000:]
    assert "(aux_conf)" in aux.stdout and "cache      6/8 stages cached" in aux.stdout

    from mlflow.tracking import MlflowClient

    c = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    for result, hits in ((one, {"none"}), (two, set(two["stages"]))):
        parent = c.get_run(result["mlflow_run_id"])
        assert set(parent.data.tags["w2s.cache_hits"].split(",")) == hits
        assert parent.data.metrics["pgr"] == pytest.approx(one["metrics"]["pgr"])
    children = c.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{one['mlflow_run_id']}'"
    )
    assert len(children) >= 8 and all(r.data.metrics for r in children)
    # The readable summary names the figures a researcher looks for first.
    text = _w2s(home, "run", str(SMALL))
    assert text.returncode == 0
    for word in ("weak", "ceiling", "PGR", "overlap", "sources", "8/8 stages cached", "mlflow"):
        assert word in text.stdout



@pytest.mark.slow
def test_a_researchers_own_csv_runs_to_a_pgr(tmp_path):
    """A file no test has seen before, its label column named on the command line."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(7)
    n = 900
    x = rng.normal(size=(n, 5))
    outcome = np.where(x @ np.array([1.5, -1.0, 0.8, 0.0, 2.0]) + 0.5 * rng.normal(size=n) > 0, "responder", "non-responder")
    frame = pd.DataFrame(x, columns=["Age (yrs)", "dose_mg", "BMI", "site id", "biomarker-A"]).assign(Outcome=outcome)
    path = tmp_path / "trial results.csv"
    frame.to_csv(path, index=False)
    done = _w2s(
        tmp_path / "home", "run", f"source.path={path}", "source.label_column=Outcome", "data.weak_view.kind=columns",
        "data.weak_view.columns=[dose_mg,site id]", "--json",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    m = result["metrics"]
    assert m["acc_ceiling"] > m["acc_weak"] + 0.1  # the weak model sees two of the five columns
    assert np.isfinite(m["pgr"]) and result["selection"]["points_per_source"] == {"data": round(n * 4 / 7.5)}
