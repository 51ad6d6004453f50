"""The benchmark tasks through the ``w2s`` command, as docs/real-data.md shows them: local
copies stand in for the hub (nothing can be downloaded here)."""

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import run_w2s

from models.nlp_tasks import TASKS

BURNS = ["amazon_polarity", "sciq", "anthropic_hh", "cosmos_qa", "boolq"]
DOCS = Path(__file__).parent.parent / "docs" / "real-data.md"


def _w2s(home: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return run_w2s(home, *args, timeout=timeout)


def test_sources_lists_every_named_source_without_importing_the_stack(tmp_path):
    done = _w2s(tmp_path, *_documented("w2s sources").split()[1:])
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for name in [*TASKS, "digits", "spam7", "ucla_courses", "ucla_levels"]:
        assert any(line.startswith(name + " ") for line in lines), name
    boolq = next(line for line in lines if line.startswith("boolq "))
    assert "google/boolq" in boolq and "train / validation" in boolq and "9,427 / 3,270" in boolq
    assert "no: hub, or source.path=DIR" in boolq and "Burns et al. 2023" in boolq and "1 = the answer is yes" in boolq
    records = {r["name"]: r for r in json.loads(_w2s(tmp_path, *_documented("w2s sources --json").split()[1:]).stdout)}
    assert records["anli-r2"]["splits"] == {"train": "train_r2", "test": "test_r2"} and records["anli-r2"]["protocol"] == "eleuther"
    assert records["digits"]["offline"] is True and records["sciq"]["offline"] is False
    # The listing needs no stack: torch, Prefect, MLflow, datasets stay unimported.
    code = (
        "import sys; from flows.cli import main; main(['sources', '--json']); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'prefect', 'mlflow', 'lightning', 'datasets', 'transformers'}), file=sys.stderr)"
    )
    probe = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0 and probe.stderr.strip().splitlines()[-1] == "[]", probe.stderr


@pytest.mark.parametrize(
    "command",
    ["w2s run source=sciq", "w2s sweep source=amazon_polarity,sciq,anthropic_hh,cosmos_qa,boolq seed=0,1,2 --name burns"],
    ids=["run", "sweep"],
)
def test_offline_a_hub_task_is_refused_in_one_line_naming_a_local_copy(tmp_path, command):
    """docs/real-data.md's hub commands, run where the hub cannot be reached."""
    args = _documented(command).split()[1:]
    done = _w2s(tmp_path / "home", *args)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "w2s: error: source=amazon_polarity: the hub dataset 'fancyzhx/amazon_polarity' cannot be reached (HF_HUB_OFFLINE is set); "
        "where the hub is reachable, save a copy with datasets.load_dataset('fancyzhx/amazon_polarity').save_to_disk(DIR), "
        "then run with source.path=DIR"
    ] if args[0] == "sweep" else [
        "w2s: error: source=sciq: the hub dataset 'allenai/sciq' cannot be reached (HF_HUB_OFFLINE is set); where the hub is "
        "reachable, save a copy with datasets.load_dataset('allenai/sciq').save_to_disk(DIR), then run with source.path=DIR"
    ]
    assert not (tmp_path / "home" / "mlflow.db").exists()  # refused before any run started


def _documented(command: str) -> str:
    """The docs page shows ``command`` as it is, in a code block."""
    text = DOCS.read_text()
    assert command in text, f"docs/real-data.md no longer shows: {command}"
    return command


@pytest.mark.slow
def test_a_task_runs_from_a_local_copy_and_tests_on_the_hub_test_split(tmp_path, save_benchmark_copy):
    """docs/real-data.md: w2s run source=boolq source.path=/data/w2s/boolq"""
    import datasets

    copy = save_benchmark_copy("boolq", tmp_path / "boolq", n_train=240, n_test=60)
    shown = _documented("w2s run source=boolq source.path=/data/w2s/boolq")
    home = tmp_path / "home"
    done = _w2s(home, *shown.replace("/data/w2s/boolq", str(copy)).split()[1:], "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    [data] = result["data"]
    assert data["test_from"] == "hub split 'validation'" and data["sizes"]["test"] == 60 and data["benchmark"] == "boolq"
    assert sum(data["sizes"].values()) == 300 and data["empty_dropped"] == 0
    assert 0 <= result["metrics"]["acc_w2s"] <= 1
    # The run's test split is the hub's validation split, row for row; no validation row trains.
    [splits] = home.glob("artifacts/make_splits/*/dataset_dict.json")
    run_splits = datasets.load_from_disk(str(splits.parent))
    def origins(split):
        return {re.search(r"\((train|validation) (\d+)\)", t).groups() for t in run_splits[split]["text"]}

    assert len(run_splits["test"]) == 60 and origins("test") == {("validation", str(i)) for i in range(60)}
    trained = set().union(*(origins(s) for s in ("weak_train", "w2s_train", "val")))
    assert trained == {("train", str(i)) for i in range(240)}
    with sqlite3.connect(home / "mlflow.db") as db:
        tags = dict(db.execute("select key, value from tags where key like 'w2s.data.boolq.%'"))
    assert tags == {"w2s.data.boolq.test_from": "hub split 'validation'", "w2s.data.boolq.empty_dropped": "0",
                    "w2s.data.boolq.benchmark": "boolq"}
    # The summary says where the rows came from; a second run is all cached.
    again = _w2s(home, *shown.replace("/data/w2s/boolq", str(copy)).split()[1:])
    assert again.returncode == 0, again.stderr[-3000:]
    assert "data       boolq      240 train rows, 60 test rows from hub split 'validation'; 0 empty texts dropped; a local copy" in again.stdout
    assert "cache      10/10 stages cached" in again.stdout


@pytest.mark.slow
def test_burns_five_tasks_sweep_from_local_copies(tmp_path, save_benchmark_copy):
    """docs/real-data.md: the sweep over Burns et al.'s five tasks, each from its own copy."""
    root = tmp_path / "copies"
    for task in BURNS:
        save_benchmark_copy(task, root / task, n_train=100, n_test=30)
    shown = _documented(
        "w2s sweep source=amazon_polarity,sciq,anthropic_hh,cosmos_qa,boolq seed=0,1,2 'source.path=/data/w2s/{name}' --name burns"
    )
    args = [a.strip("'") for a in shown.replace("/data/w2s", str(root)).split()[1:]]
    done = _w2s(tmp_path / "home", *args, "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert not result["failed"]
    cells = {c["cell"] for c in result["cells"]}
    assert cells == {f"source={t},seed={s}" for t in BURNS for s in (0, 1, 2)}
    # One read and one embedding per task, whatever the seed.
    assert result["stages"]["ingest_dataset"]["computed"] == 5 and result["stages"]["embed"]["computed"] == 5
    assert result["stages"]["make_splits"]["computed"] == 15
    compare = _w2s(tmp_path / "home", *_documented("w2s compare --filter w2s.sweep=burns").split()[1:])
    assert compare.returncode == 0, compare.stderr[-3000:]
    assert all(f"source={t},seed={s}" in compare.stdout for t in BURNS for s in (0, 1, 2)), compare.stdout


def test_the_docs_list_every_task_with_its_hub_splits():
    text = DOCS.read_text()
    for name, t in TASKS.items():
        row = next((line for line in text.splitlines() if line.startswith(f"| `{name}` |")), None)
        assert row is not None, name
        assert f"`{t.train_split}`" in row and f"`{t.test_split}`" in row and (t.hub in row or "as `" in row), row
