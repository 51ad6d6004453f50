"""``w2s plan`` says, before running, which stages would run and why; the run then agrees."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from flows.config import load_config
from flows.experiment import w2s_experiment
from flows.plan import plan_experiment, stage_names
from models.methods import METHODS
from tasks.code_fingerprint import code_dependencies

pytestmark = pytest.mark.usefixtures("prefect_harness")

SMALL = Path(__file__).parent / "small.yaml"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def done():
    """A finished run of a seed no other test uses."""
    config = load_config(SMALL, ["seed=301"])
    w2s_experiment(config)
    return config


def _would(steps) -> dict[str, str]:
    return {s["stage"]: s["would"] for s in steps}


def _reasons(steps, stage) -> list[tuple[str, str]]:
    return [(r["kind"], r["detail"]) for s in steps if s["stage"] == stage for r in s["reasons"]]


def _check_against_the_run(steps, config):
    """Every stage the plan calls cached is a cache hit; every one it says will run, runs."""
    ran = w2s_experiment(config)["stages"]
    for name, would in _would(steps).items():
        if would == "cached":
            assert ran[name]["cached"], name
        elif would == "run":
            assert not ran[name]["cached"], name


def test_an_unchanged_config_is_all_cached(done):
    assert set(_would(plan_experiment(done)).values()) == {"cached"}


def test_a_method_change_reruns_the_student_and_its_evaluation_only(done):
    config = done.model_copy(update={"method": METHODS["xent_hard"].Params()})
    steps = plan_experiment(config)
    would = _would(steps)
    assert would["train_strong"] == "run" and ("config", "method: xent → xent_hard") in _reasons(steps, "train_strong")
    assert would["evaluate"] == "maybe" and ("after", "train_strong") in _reasons(steps, "evaluate")
    assert {s for s, w in would.items() if w == "cached"} == {
        "ingest", "train_weak", "weak_label", "train_ceiling", "detect_overlap", "select_sources"
    }
    _check_against_the_run(steps, config)


def test_a_weak_model_change_reruns_the_weak_model_and_what_reads_its_labels(done):
    config = load_config(SMALL, ["seed=301", "weak.C=0.25"])
    steps = plan_experiment(config)
    would = _would(steps)
    assert would["train_weak"] == "run" and _reasons(steps, "train_weak") == [("config", "weak.C: 1.0 → 0.25")]
    assert would["train_ceiling"] == "cached" and would["ingest"] == "cached"
    for stage in ("weak_label", "detect_overlap", "select_sources", "train_strong", "evaluate"):
        assert would[stage] == "maybe", stage
    _check_against_the_run(steps, config)
    # A new weak model gives new labels: everything that reads them really did rerun.
    assert set(_would(plan_experiment(config)).values()) == {"cached"}


def test_forced_reruns_are_planned_as_such(done):
    steps = plan_experiment(done, refresh=("train_ceiling",), rerun_from=("select_sources",))
    would = _would(steps)
    assert _reasons(steps, "train_ceiling") == [("forced", "--refresh")]
    assert _reasons(steps, "select_sources") == [("forced", "--from")]
    assert ("forced", "downstream of --from") in _reasons(steps, "train_strong")
    assert would["train_weak"] == "cached"


def test_a_deleted_artifact_is_planned_as_missing(done):
    from tasks.workspace import artifacts_root

    [key_dir] = [d for d in (artifacts_root() / "train_ceiling").iterdir() if _ceiling_of(d, done)]
    shutil.rmtree(key_dir)
    steps = plan_experiment(done)
    assert _would(steps)["train_ceiling"] == "run"
    assert _reasons(steps, "train_ceiling")[0][0] == "missing"
    assert not w2s_experiment(done)["stages"]["train_ceiling"]["cached"]  # the run agrees and repairs it
    assert set(_would(plan_experiment(done)).values()) == {"cached"}


def _ceiling_of(folder: Path, config) -> bool:
    record = json.loads((folder / "_stage.json").read_text()) if (folder / "_stage.json").is_file() else {}
    return record.get("params", {}).get("seed") == config.seed


@pytest.mark.slow
def test_editing_a_models_file_invalidates_exactly_the_stages_that_run_it(done, tmp_path):
    """The project's packages copied, one line added to models/overlap.py, and the plan run
    from the copy: the stages whose code imports that file, and only those, are named."""
    for package in ("flows", "tasks", "models"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    with open(tmp_path / "models" / "overlap.py", "a") as f:
        f.write("\n# an edit\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "flows.cli", "plan", str(SMALL), "seed=301", "--json"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    steps = json.loads(out.stdout)["stages"]
    modules = {s["stage"]: f"tasks.{s['stage']}" for s in steps}
    uses_it = {stage for stage, module in modules.items() if "models.overlap" in code_dependencies(module)}
    assert uses_it, "models.overlap is used by at least one stage"
    named = {s["stage"] for s in steps if ("code", "models/overlap.py") in _reasons([s], s["stage"])}
    assert named == uses_it
    for s in steps:
        if s["stage"] not in uses_it:
            assert s["would"] in ("cached", "maybe"), s
            assert all(r["kind"] == "after" for r in s["reasons"]), s


@pytest.mark.slow
def test_plan_and_run_agree_on_every_forced_stage_of_the_derived_list():
    """Every stage the wiring lists (csl's teacher levels included) can be forced either way,
    and the plan names exactly the stages the run then recomputes."""
    config = load_config(SMALL, ["seed=302", "method=csl", "method.by=sources", "method.teachers=[1,2]"])
    w2s_experiment(config)
    names = stage_names(config)
    assert {"teachers_2", "train_teachers"} <= set(names)
    for option in ("refresh", "rerun_from"):
        for name in names:
            forced = {option: (name,)}
            steps = plan_experiment(config, **forced)
            planned = {s["stage"] for s in steps if s["would"] == "run"}
            ran = w2s_experiment(config, **forced)["stages"]
            computed = {stage for stage, r in ran.items() if not r["cached"]}
            assert planned == computed, (option, name, planned, computed)
            assert name in planned or (name == "train_teachers" and "teachers_2" in planned)


@pytest.mark.slow
def test_the_documented_plan_names_what_the_change_reruns_and_why(tmp_path):
    """docs/operations.md's plan-demo block, run as shown; the plan reads as the page's sample."""
    import re
    import shlex

    from cli_helpers import run_w2s

    page = (ROOT / "docs" / "operations.md").read_text()
    block = re.search(r"<!-- plan-demo -->\n```bash\n(.*?)```", page, re.S).group(1)
    run, plan = [shlex.split(line)[1:] for line in block.splitlines()]
    assert run[0] == "run" and plan[0] == "plan"
    home = tmp_path / "home"
    done = run_w2s(home, *run)
    assert done.returncode == 0, done.stderr[-2000:]
    planned = run_w2s(home, *plan)
    assert planned.returncode == 0, planned.stderr[-2000:]
    rows = {line.split()[0]: " ".join(line.split()[1:]) for line in planned.stdout.splitlines()[2:] if line.strip()}
    assert rows["ingest"] == "cached" and rows["train_ceiling"] == "cached"
    assert rows["train_weak"] == "run config: weak.C: 1.0 → 0.5"
    assert rows["weak_label"] == "maybe after: train_weak" and rows["detect_overlap"] == "maybe after: weak_label"
    sample = page.split("$ w2s plan tests/small.yaml method=aux_conf weak.C=0.5\n", 1)[1].split("```", 1)[0]
    for line in sample.splitlines()[2:]:
        if line != "...":
            assert " ".join(line.split()) in {f"{k} {v}" for k, v in rows.items()}, line
