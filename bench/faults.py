"""Faults and concurrency against real runs of ``w2s``: what a crash, a flaky disk, a deleted
file or four runs at once do to a workspace, and whether anything is lost.

    .venv/bin/python bench/faults.py [--out bench/results/faults.json] [--only NAME ...]

Every scenario runs the installed command line in fresh workspaces (its own process, so a
SIGKILL is a real one), injects its fault, lets the workbench recover, then checks what a
researcher would: the run finishes, only what was lost is recomputed, the results equal an
undisturbed run's, and the SQLite stores and the cache still read. ``data_lost`` counts
stage results and MLflow runs that existed before the fault and are gone or damaged after
recovery. The report lists the scenarios tried and passed; tests/test_faults.py and
tests/test_faults_concurrency.py run all but the random-moments one.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from flows.server import stop_server  # noqa: E402  (light: the standard library only)

SMALL = ROOT / "tests" / "small.yaml"
# A student that trains for several seconds (about 5 s on 2 cores), so that a kill lands
# inside its epochs; the resumed and the reference run each train it in full.
SLOW_STUDENT = ["strong.arch=mlp", "strong.hidden=256", "strong.optimizer=adam", "strong.lr=0.001",
                "strong.batch_size=8", "strong.epochs=60", "strong.patience=60"]
# Fails the first array write of the run with EIO, as a flaky disk would, then behaves.
FLAKY_DISK = """
import errno, sys
import numpy
real_save, calls = numpy.save, []
def flaky_save(*args, **kwargs):
    calls.append(1)
    if len(calls) == 1:
        raise OSError(errno.EIO, "Input/output error (injected)")
    return real_save(*args, **kwargs)
numpy.save = flaky_save
from flows.cli import main
sys.exit(main(sys.argv[1:]))
"""


class ScenarioFailed(AssertionError):
    pass


def check(condition: bool, what: str) -> None:
    if not condition:
        raise ScenarioFailed(what)


# --- running the command ---------------------------------------------------------------


def environment(home: Path) -> dict:
    """A user's environment: the workspace's own Prefect server (started by its first run)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
    env["W2S_HOME"] = str(home)
    return env


def w2s_command(*args: str, program: str | None = None) -> list[str]:
    return [sys.executable, "-c", program, *args] if program else [sys.executable, "-m", "flows.cli", *args]


def run_json(home: Path, *args: str, program: str | None = None, timeout: float = 600) -> dict:
    """One ``w2s run ... --json`` to completion; its result."""
    done = subprocess.run(w2s_command("run", *args, "--json", program=program), env=environment(home), cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)
    check(done.returncode == 0, f"w2s run {' '.join(args)} exited {done.returncode}: {done.stderr[-1500:]}")
    return json.loads(done.stdout)


def start(home: Path, *args: str) -> subprocess.Popen:
    """``w2s run ... --json`` in a session of its own, so that killing the group kills every process."""
    return subprocess.Popen(w2s_command("run", *args, "--json"), env=environment(home), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def kill(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate()


def computed(result: dict) -> set[str]:
    return {name for name, r in result["stages"].items() if not r["cached"]}


# --- what a workspace holds --------------------------------------------------------------


def committed(home: Path) -> dict[str, dict]:
    """Every committed stage result: ``stage/folder`` -> its ``_stage.json``. A stage is
    committed once Prefect's record of it is written whole; a folder renamed into place by a
    run killed before that is no cache entry (the next run recomputes and replaces it)."""
    out = {}
    for record in (home / "artifacts").glob("*/*/_stage.json"):
        stage = json.loads(record.read_text())
        if readable_json(home / "prefect-results" / stage["key"]):
            out[f"{record.parent.parent.name}/{record.parent.name}"] = stage
    return out


def readable_json(path: Path) -> bool:
    try:
        json.loads(path.read_text())
        return True
    except (OSError, ValueError):
        return False


def intact(home: Path, name: str, record: dict) -> bool:
    """A stage result still usable as a cache hit: its Prefect record, every file at its size."""
    folder = home / "artifacts" / name
    files_ok = all((folder / rel).is_file() and (folder / rel).stat().st_size == size for rel, size in record["files"].items())
    return files_ok and readable_json(home / "prefect-results" / record["key"])


def mlflow_runs(home: Path) -> dict[str, str]:
    if not (home / "mlflow.db").exists():  # killed before the store was made
        return {}
    with sqlite3.connect(home / "mlflow.db") as db:
        return dict(db.execute("select run_uuid, status from runs"))


def snapshot(home: Path) -> dict:
    return {"stages": committed(home), "runs": set(mlflow_runs(home))}


def data_lost(home: Path, before: dict) -> int:
    """Stage results and MLflow runs of ``before`` that are gone or damaged now."""
    stages = sum(not intact(home, name, record) for name, record in before["stages"].items())
    return stages + len(before["runs"] - set(mlflow_runs(home)))


def store_problems(home: Path) -> list[str]:
    """The SQLite stores pass their integrity check; every cache record is a JSON manifest."""
    problems = []
    for db in (home / "mlflow.db", home / "prefect" / "prefect.db"):
        with sqlite3.connect(db) as c:
            verdict = c.execute("pragma integrity_check").fetchone()[0]
        if verdict != "ok":
            problems.append(f"{db.name}: {verdict}")
    for record in (home / "prefect-results").iterdir():
        if not readable_json(record) or json.loads(record.read_text())["metadata"]["serializer"]["type"] != "json":
            problems.append(f"{record.name}: not a JSON result")
    return problems


def scratch_left(home: Path) -> list[str]:
    return [p.name for p in (home / "artifacts").glob("*/.tmp-*")]


# --- the scenarios -----------------------------------------------------------------------


def sigkill_mid_training(work: Path) -> dict:
    """SIGKILL while train_strong trains; the rerun recomputes train_strong and evaluate only,
    takes over the lock the killed run held, and gives the undisturbed run's numbers."""
    home, args = work / "home", [str(SMALL), "seed=9101", *SLOW_STUDENT]
    process = start(home, *args)
    while not list((home / "artifacts" / "train_strong").glob(".tmp-*")):
        check(process.poll() is None, "the run ended before train_strong started")
        time.sleep(0.05)
    time.sleep(1.0)  # well inside the epochs
    kill(process)
    before = snapshot(home)
    check(not any(k.startswith("train_strong/") for k in before["stages"]), "train_strong committed before the kill")
    killed_run = [r for r, status in mlflow_runs(home).items() if status == "RUNNING"]
    resumed = run_json(home, *args)
    reference = run_json(work / "reference", *args)
    check(computed(resumed) == {"train_strong", "evaluate"}, f"the rerun computed {sorted(computed(resumed))}")
    check(resumed["metrics"] == reference["metrics"], "the resumed run's metrics differ from an undisturbed run's")
    check(not scratch_left(home), f"scratch folders left: {scratch_left(home)}")
    check(all(mlflow_runs(home)[r] == "KILLED" for r in killed_run), "the killed run's MLflow run is not marked KILLED")
    check(not store_problems(home), f"stores: {store_problems(home)}")
    return {"data_lost": data_lost(home, before), "stages_kept": len(before["stages"]),
            "recomputed": sorted(computed(resumed)), "killed_mlflow_runs_marked_killed": len(killed_run)}


def sigkill_at_random_moments(work: Path, kills: int = 3, seed: int = 0) -> dict:
    """Killed three times at random moments (seeded: 0-0.3 s after 1-3 more stages have
    committed), resumed each time: every commit is whole or absent, nothing committed is
    lost, and the run ends with the undisturbed numbers."""
    home, args = work / "home", [str(SMALL), "seed=9102", *SLOW_STUDENT]
    rng, lost, moments, progress = random.Random(seed), 0, [], []
    for _ in range(kills):
        before = snapshot(home)
        process = start(home, *args)
        target = len(before["stages"]) + rng.randint(1, 3)
        while len(committed(home)) < target and process.poll() is None:
            time.sleep(0.02)
        moments.append(round(rng.uniform(0.0, 0.3), 2))  # into the next stage, or its commit
        time.sleep(moments[-1])
        if process.poll() is None:
            kill(process)
        lost += data_lost(home, before)
        progress.append(len(committed(home)))
        check(all(intact(home, n, r) for n, r in committed(home).items()), "a committed stage is incomplete")
    final = run_json(home, *args)
    reference = run_json(work / "reference", *args)
    check(final["metrics"] == reference["metrics"], "the resumed run's metrics differ from an undisturbed run's")
    check(not store_problems(home), f"stores: {store_problems(home)}")
    return {"data_lost": lost, "kill_seconds_after_a_commit": moments, "stages_committed_after_each_kill": progress,
            "recomputed_at_the_end": sorted(computed(final))}


def transient_io_fault(work: Path) -> dict:
    """The first array write fails with EIO: that stage is retried, and the retry is recorded
    in the run's result, on the stage's MLflow run (attempts) and on the parent (w2s.retries)."""
    home, args = work / "home", [str(SMALL), "seed=9103"]
    result = run_json(home, *args, program=FLAKY_DISK)
    retried = {name: r["retries"] for name, r in result["stages"].items() if r["retries"]}
    check(sum(retried.values()) == 1, f"retries recorded: {retried}")
    from mlflow.tracking import MlflowClient

    c = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    parent = c.get_run(result["mlflow_run_id"])
    [stage] = retried
    [child] = c.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}' "
                            f"and tags.`w2s.stage` = '{stage}'")
    check(child.data.metrics.get("attempts") == 2, f"{stage}'s MLflow run records attempts={child.data.metrics.get('attempts')}")
    check(parent.data.tags.get("w2s.retries") == "1", f"parent run tag w2s.retries={parent.data.tags.get('w2s.retries')}")
    reference = run_json(work / "reference", *args)
    check(result["metrics"] == reference["metrics"], "the retried run's metrics differ from an undisturbed run's")
    return {"data_lost": 0, "retried_stage": stage, "attempts": 2}


def damaged_cache(work: Path) -> dict:
    """The weak model's weights deleted, the weak labels truncated and the evaluation's cache
    record cut short (as by a kill while it was written): those three stages are recomputed,
    and since the first two give the same output again, nothing else is."""
    home, args = work / "home", [str(SMALL), "seed=9104"]
    first = run_json(home, *args)
    [weak] = (home / "artifacts" / "train_weak").glob("*/model/weights.pt")
    weak.unlink()
    label = next((home / "artifacts" / "weak_label").glob("*/*.npy"))
    label.write_bytes(label.read_bytes()[:10])
    [evaluation] = [r for n, r in committed(home).items() if n.startswith("evaluate/")]
    record = home / "prefect-results" / evaluation["key"]
    record.write_bytes(record.read_bytes()[:40])
    before = snapshot(home)
    again = run_json(home, *args)
    damaged = {"train_weak", "weak_label", "evaluate"}
    check(computed(again) == damaged, f"the rerun computed {sorted(computed(again))}")
    check(again["metrics"] == first["metrics"], "the recomputed run's metrics differ from the first run's")
    check(not store_problems(home), f"stores: {store_problems(home)}")
    lost = data_lost(home, {"stages": {k: v for k, v in before["stages"].items() if k.split("/")[0] not in damaged},
                            "runs": before["runs"]})
    return {"data_lost": lost, "recomputed": sorted(computed(again))}


def four_concurrent_runs(work: Path) -> dict:
    """Four runs started at once on one workspace (two identical, two other methods): all
    finish, each stage result is computed once, and each equals the same run made alone."""
    configs = [[str(SMALL), "seed=9105", f"method={m}"] for m in ("xent", "xent", "bootstrap", "adapt_conf")]
    home = work / "home"
    processes = [start(home, *c) for c in configs]
    outputs = [p.communicate() for p in processes]
    for p, (out, err), c in zip(processes, outputs, configs):
        check(p.returncode == 0, f"concurrent run {c[-1]} exited {p.returncode}: {err[-1500:]}")
    results = [json.loads(out) for out, _ in outputs]
    with sqlite3.connect(home / "mlflow.db") as db:
        keys = Counter(k for (k,) in db.execute("select value from tags where key = 'w2s.cache_key'"))
    twice = {k: n for k, n in keys.items() if n > 1}
    check(not twice, f"stage results computed more than once: {twice}")
    alone = [run_json(work / "sequential", *c) for c in configs]
    same = [r["metrics"] == a["metrics"] for r, a in zip(results, alone)]
    check(all(same), f"concurrent vs sequential metrics equal: {same}")
    check(not store_problems(home), f"stores: {store_problems(home)}")
    return {"data_lost": 0, "runs": len(configs), "stage_results": len(keys),
            "stage_computations": sum(keys.values())}


SCENARIOS = {
    f.__name__: f
    for f in (sigkill_mid_training, sigkill_at_random_moments, transient_io_fault, damaged_cache,
              four_concurrent_runs)
}


def run_scenario(name: str) -> dict:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"w2s-{name}-") as work:
        try:
            details, passed, error = SCENARIOS[name](Path(work)), True, None
        except (ScenarioFailed, subprocess.TimeoutExpired) as e:
            details, passed, error = {}, False, str(e)
        finally:  # each workspace's Prefect server, which its first run started
            for server in Path(work).glob("*/server"):
                stop_server(server.parent)
    return {"scenario": name, "passed": passed, "error": error, "data_lost": details.pop("data_lost", None),
            "seconds": round(time.perf_counter() - started, 1), "details": details,
            "what": " ".join(SCENARIOS[name].__doc__.split())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "faults.json"))
    parser.add_argument("--only", action="append", choices=sorted(SCENARIOS), help="run only these scenarios")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from common import machine

    results = []
    for name in args.only or SCENARIOS:
        results.append(run_scenario(name))
        print(json.dumps(results[-1]), flush=True)
    report = {
        "command": "python bench/faults.py" + "".join(f" --only {n}" for n in args.only or []),
        "machine": machine(),
        "tried": len(results),
        "passed": sum(r["passed"] for r in results),
        "data_lost": sum(r["data_lost"] or 0 for r in results),
        "scenarios": results,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=1) + "\n")
    os.replace(tmp, out)
    print(f"{report['passed']}/{report['tried']} scenarios passed, data lost: {report['data_lost']}; wrote {out}")
    return 0 if report["passed"] == report["tried"] and report["data_lost"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
