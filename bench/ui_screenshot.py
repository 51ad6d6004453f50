"""Look at a workspace's MLflow UI the way a user does: in a browser, with its JavaScript run.

    .venv/bin/python bench/ui_screenshot.py --home DIR --experiment NAME [--sweep RUN_ID]
        [--out bench/results/mlflow_ui_sweep.png]

The MLflow UI is a single-page app: the HTML the server sends holds no runs, its scripts
fetch them and draw the table. So checking what the store "shows" means rendering the page
in a real browser. This module starts ``w2s ui`` on a free port (in its own process group,
so that stopping it stops every process it started), reads the address it prints, and
drives headless Chromium (bench/browser.py) to read the rendered DOM or take a picture.

The picture is the runs table at that address, in the UI's model-training view, with a
sweep's cells unfolded under its run and its headline columns (method, seed, accuracies,
PGR) shown: the browser's local storage holds those table settings, and the assistant
panel MLflow opens on a browser's first visit is closed, as a returning user has it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import browser  # noqa: E402  (bench/ is no package)
from browser import chromium_binary, dump_dom, screenshot  # noqa: E402,F401  (the test uses them from here)

ROOT = Path(__file__).resolve().parent.parent
TRAINING_VIEW = "workflowType=machine_learning"

# What only the model-training view draws: its sidebar's links carry its workflow type, it
# links the model registry and the docs of classic ML; and what only the GenAI view draws.
TRAINING_MARKERS = ("workflowType=machine_learning", ">Model registry<", "https://www.mlflow.org/docs/latest/ml/")
GENAI_MARKERS = ("workflowType=genai", "https://www.mlflow.org/docs/latest/genai/", "/judges", "Detect Issues",
                 "Token Usage")

# A browser that has been here before: MLflow's assistant panel, which opens by itself on a
# first visit from a loopback address, was closed.
RETURNING_USER = {"mlflow.assistant.fab.autoOpenedOnFirstLoad_v1": "true", "mlflow.assistant.panelOpen_v1": "false"}
HEADLINE_COLUMNS = ["params.`method`", "params.`seed`", "metrics.`acc_weak`", "metrics.`acc_ceiling`",
                    "metrics.`acc_w2s`", "metrics.`pgr`"]


@dataclass(frozen=True)
class ServedUI:
    base: str  # http://127.0.0.1:PORT
    url: str  # the address `w2s ui` printed


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(log, limit: int = 3000) -> str:
    """The end of the server's log; read with pread, since the server shares the file offset."""
    size = os.fstat(log.fileno()).st_size
    return os.pread(log.fileno(), limit, max(0, size - limit)).decode(errors="replace")


def _wait_until_healthy(base: str, server: subprocess.Popen, log, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"w2s ui exited with status {server.returncode} before answering:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise RuntimeError(f"w2s ui did not answer {base}/health within {timeout:.0f} s:\n{_tail(log)}")


def _printed_url(log, base: str) -> str:
    """The address ``w2s ui`` printed (on a line of its own, before the server started)."""
    for line in _tail(log, 1 << 20).splitlines():
        if line.startswith(base):
            return line.strip()
    raise RuntimeError(f"w2s ui printed no address under {base}:\n{_tail(log)}")


def _group_gone(server: subprocess.Popen, within: float) -> bool:
    """Whether every process of the server's group has ended (reaping the leader as we go:
    an unreaped leader is a zombie, and a zombie still counts as a member)."""
    deadline = time.monotonic() + within
    while True:
        server.poll()
        try:
            os.killpg(server.pid, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def _stop(server: subprocess.Popen, grace: float = 5.0) -> None:
    """SIGTERM to the whole process group, SIGKILL to whatever is left after ``grace`` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            break
        if _group_gone(server, grace):
            break
    server.wait()


@contextmanager
def mlflow_ui(home: Path, port: int | None = None, timeout: float = 60.0, experiment: str | None = None) -> Iterator[ServedUI]:
    """Serve the MLflow store of workspace ``home`` with ``w2s ui [--experiment NAME]``;
    yields its base URL and the address it printed.

    The server runs in its own session (so its own process group); on exit the whole group
    is stopped, so no server or worker outlives the block.
    """
    port = port or free_port()
    base = f"http://127.0.0.1:{port}"
    # The user's own tracking server or Prefect settings must not leak in: serve home's store.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PREFECT_"))}
    env["W2S_HOME"] = str(home)
    # `python -m flows.cli` is the `w2s` entry point, without relying on PATH.
    cmd = [sys.executable, "-m", "flows.cli", "ui", "--port", str(port), *(["--experiment", experiment] if experiment else [])]
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(cmd, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                  start_new_session=True)
        try:
            _wait_until_healthy(base, server, log, timeout)
            yield ServedUI(base, _printed_url(log, base))
        finally:
            _stop(server)


def experiment_id(base: str, name: str) -> str:
    """The id of experiment ``name``, asked of the running server's REST API."""
    query = urllib.parse.urlencode({"experiment_name": name})
    with urllib.request.urlopen(f"{base}/api/2.0/mlflow/experiments/get-by-name?{query}", timeout=10) as response:
        return json.load(response)["experiment"]["experiment_id"]


def run_url(base: str, experiment: str, run_id: str) -> str:
    """A run's page, in the model-training view."""
    return f"{base}/#/experiments/{experiment}/runs/{run_id}?{TRAINING_VIEW}"


def compare_url(base: str, experiment: str, run_ids: list[str]) -> str:
    """MLflow's side-by-side comparison of ``run_ids``, every cell with its params."""
    runs, experiments = urllib.parse.quote(json.dumps(run_ids)), urllib.parse.quote(json.dumps([experiment]))
    return f"{base}/#/compare-runs?runs={runs}&experiments={experiments}&{TRAINING_VIEW}"


def view_markers(dom: str) -> dict[str, list[str]]:
    """Which markers of each view the rendered DOM holds."""
    return {"training": [m for m in TRAINING_MARKERS if m in dom], "genai": [m for m in GENAI_MARKERS if m in dom]}


def runs_table_storage(experiment: str, unfold: list[str]) -> dict[str, str]:
    """Local storage for the runs table of ``experiment``: the headline columns shown and the
    runs ``unfold`` expanded (a sweep's cells appear under it), as the table saves them."""
    state = {"selectedColumns": HEADLINE_COLUMNS, "runsExpanded": {run: True for run in unfold}}
    return {f'MLflowLocalStorage-1.1-ExperimentPage-["{experiment}"]-ReactComponentState': json.dumps(state)}


def sweep_picture(ui: ServedUI, experiment: str, sweep_run: str, cell_runs: list[str], path: Path,
                  size: tuple[int, int] = (1600, 1000)) -> str:
    """Open the address ``w2s ui`` printed with the sweep unfolded; once its cells are drawn,
    save the picture at ``path``; returns the DOM it was taken of."""
    storage = {**RETURNING_USER, **runs_table_storage(experiment, [sweep_run])}
    drawn = " && ".join(f"document.querySelector('a[href*=\"{run}\"]')" for run in [sweep_run, *cell_runs])
    with browser.page(size, storage) as tab:
        tab.open(ui.url, until=drawn, what="the sweep and its cells")
        tab.screenshot(path)
        return tab.dom()


def _sweep_runs(home: Path, experiment: str, sweep: str | None) -> tuple[str, list[str]]:
    """The sweep's run (``sweep``, or the newest sweep of ``experiment``) and its cells' runs."""
    from mlflow.tracking import MlflowClient

    c = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    found = c.get_experiment_by_name(experiment)
    if found is None:
        raise SystemExit(f"ui_screenshot: no experiment {experiment!r} in {home}")
    if sweep is None:
        newest = c.search_runs([found.experiment_id], "tags.`w2s.sweep` IS NOT NULL and tags.`w2s.cell` IS NULL and tags.`w2s.stage` IS NULL",
                               order_by=["attributes.start_time DESC"], max_results=1)
        if not newest:
            raise SystemExit(f"ui_screenshot: no sweep in experiment {experiment!r}")
        sweep = newest[0].info.run_id
    cells = c.search_runs([found.experiment_id], f"tags.`mlflow.parentRunId` = '{sweep}' and tags.`w2s.cell` IS NOT NULL")
    return sweep, [r.info.run_id for r in cells]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Screenshot a sweep's runs in a workspace's MLflow UI, training view.")
    parser.add_argument("--home", type=Path, required=True, help="the workspace (W2S_HOME) whose store to show")
    parser.add_argument("--experiment", required=True, help="experiment name, e.g. the sweep's `experiment:` (w2s-sweep)")
    parser.add_argument("--sweep", help="the sweep's run id (default: the experiment's newest sweep)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "mlflow_ui_sweep.png")
    parser.add_argument("--width", type=int, default=1600)
    parser.add_argument("--height", type=int, default=1000)
    args = parser.parse_args(argv)
    if chromium_binary() is None:
        parser.error("chromium is not installed (Debian: apt-get install chromium)")
    sweep, cells = _sweep_runs(args.home, args.experiment, args.sweep)
    with mlflow_ui(args.home, experiment=args.experiment) as ui:
        experiment = experiment_id(ui.base, args.experiment)
        dom = sweep_picture(ui, experiment, sweep, cells, args.out, (args.width, args.height))
    markers = view_markers(dom)
    print(json.dumps({"url": ui.url, "view_markers": markers, "cells": len(cells), "picture": str(args.out)}))
    if markers["genai"] or not markers["training"]:
        print("ui_screenshot: the page is not in the model-training view", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
