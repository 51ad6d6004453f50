"""The overlap-density study: the project against a plain scikit-learn loop, in one run.

    .venv/bin/python bench/overlap_speed.py [--repeats 2] [key=value ...]

Both sides do the same work on the same grid, seeds and draws: weak model, ceiling, both
detectors, and W2S students on the true overlap points, on each detector's overlap
points and on all points, for every (grid point × seed) cell (bench/overlap_sklearn_loop.py
is the loop). Each side is one fresh process, timed end to end, imports included; the
two alternate so that machine noise hits both.

The project side is ``w2s study overlap`` in an empty workspace (no cache, empty MLflow
store) whose Prefect database already exists, as after any earlier run; writing the
cache and tracking every stage in MLflow are included. Also measured: the same with a
Prefect home created from nothing, and a fully cached rerun.
Results go to ``bench/results/overlap_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import stop_servers  # noqa: E402
from common import EMPTY_FLOW, RESULTS, ROOT, env, machine, timed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("overrides", nargs="*", help="study config overrides, applied to both sides")
    args = parser.parse_args()

    loop = [sys.executable, str(ROOT / "bench" / "overlap_sklearn_loop.py"), *args.overrides]
    study = [sys.executable, "-m", "flows.cli", "study", "overlap", "--json", *args.overrides]
    base = Path(tempfile.mkdtemp(prefix="w2s-overlap-speed-"))
    prefect_home = base / "prefect"
    sklearn_s, project_s = [], []
    for i in range(args.repeats):
        sklearn_s.append(timed(loop, env(base / f"loop-{i}"))[0])
        home = base / f"study-{i}"
        environment = {**env(home), "PREFECT_HOME": str(prefect_home)}
        timed([sys.executable, "-c", EMPTY_FLOW], environment)  # the Prefect database exists, as for any user
        seconds, out = timed(study, environment)
        result = json.loads(out)
        assert not any(s["cached"] for s in result["stages"].values()), "the study was not computed"
        project_s.append(seconds)
    cached_s, out = timed(study, environment)
    assert all(s["cached"] for s in json.loads(out)["stages"].values()), "the rerun was not fully cached"
    cold_home = base / "cold"
    fully_cold_s = timed(study, env(cold_home))[0]
    stop_servers(base)
    shutil.rmtree(base, ignore_errors=True)

    ratio = statistics.median(project_s) / statistics.median(sklearn_s)
    report = {
        "what": "w2s study overlap vs a plain scikit-learn loop over the same grid, seeds and variants",
        "commands": {"project": " ".join(study[1:]), "sklearn_loop": " ".join(loop[1:])},
        "overrides": args.overrides,
        "cells": sum(r["n_seeds"] for r in result["rows"]),
        "sklearn_loop_s": [round(s, 2) for s in sklearn_s],
        "project_s": [round(s, 2) for s in project_s],
        "project_over_sklearn": round(ratio, 3),
        "target": "<= 2.0",
        "met": ratio <= 2.0,
        "project_cached_rerun_s": round(cached_s, 2),
        "project_fresh_prefect_home_s": round(fully_cold_s, 2),
        "stage_seconds": {k: v["seconds"] for k, v in result["stages"].items()},
        "machine": machine(),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "overlap_speed.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
