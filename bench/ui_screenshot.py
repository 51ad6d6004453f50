"""Look at a workspace's MLflow UI the way a user does: in a browser, with its JavaScript run.

    .venv/bin/python bench/ui_screenshot.py --home DIR --experiment NAME [--out bench/results/mlflow_ui_sweep.png]

The MLflow UI is a single-page app: the HTML the server sends holds no runs, its scripts
fetch them and draw the table. So checking that the store "shows" its runs means rendering
the page in a real browser. This module starts ``w2s ui`` on a free port (in its own process
group, so that stopping it stops every process it started), and drives headless Chromium
to dump the rendered DOM or save a screenshot. Chromium's ``--virtual-time-budget`` lets the
page's timers and fetches run to completion before the DOM is read or the picture taken.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",  # we run as root in a container; Chromium's sandbox refuses to start there
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


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
def mlflow_ui(home: Path, port: int | None = None, timeout: float = 60.0) -> Iterator[str]:
    """Serve the MLflow store of workspace ``home`` with ``w2s ui``; yields the base URL.

    The server runs in its own session (so its own process group); on exit the whole group
    is stopped, so no server or worker outlives the block.
    """
    port = port or free_port()
    base = f"http://127.0.0.1:{port}"
    # The user's own tracking server or Prefect settings must not leak in: serve home's store.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PREFECT_"))}
    env["W2S_HOME"] = str(home)
    # `python -m flows.cli` is the `w2s` entry point, without relying on PATH.
    cmd = [sys.executable, "-m", "flows.cli", "ui", "--port", str(port)]
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(cmd, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                  start_new_session=True)
        try:
            _wait_until_healthy(base, server, log, timeout)
            yield base
        finally:
            _stop(server)


def experiment_id(base: str, name: str) -> str:
    """The id of experiment ``name``, asked of the running server's REST API."""
    query = urllib.parse.urlencode({"experiment_name": name})
    with urllib.request.urlopen(f"{base}/api/2.0/mlflow/experiments/get-by-name?{query}", timeout=10) as response:
        return json.load(response)["experiment"]["experiment_id"]


def runs_url(base: str, experiment: str) -> str:
    """The runs table of an experiment in MLflow 3.17's UI.

    ``#/experiments/ID`` alone opens the GenAI overview (traces, tokens, cost) with no runs on
    it; the ``runs`` tab with the "Model training" workflow shows the table of runs.
    """
    return f"{base}/#/experiments/{experiment}/runs?workflowType=machine_learning"


def compare_url(base: str, experiment: str, run_ids: list[str]) -> str:
    """MLflow's side-by-side comparison of ``run_ids``: the runs table nests a sweep's cells
    under its parent run (collapsed), while this page shows every cell with its params."""
    runs, experiments = urllib.parse.quote(json.dumps(run_ids)), urllib.parse.quote(json.dumps([experiment]))
    return f"{base}/#/compare-runs?runs={runs}&experiments={experiments}"


def chromium_binary() -> str | None:
    """Debian's ``/usr/bin/chromium``, else a ``chromium`` on PATH, else None."""
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium")


def _chromium(args: list[str], budget_ms: int) -> subprocess.CompletedProcess:
    binary = chromium_binary()
    if binary is None:
        raise RuntimeError("chromium is not installed (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="w2s-chromium-") as profile:
        cmd = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=budget_ms / 1000 + 60)


def screenshot(url: str, path: Path, size: tuple[int, int] = (1600, 1000), budget_ms: int = 15000) -> Path:
    """Render ``url`` in a ``size`` (width, height) window and save it as a PNG at ``path``."""
    path = Path(path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)  # a picture left from an earlier run must not pass for this one
    done = _chromium([f"--window-size={size[0]},{size[1]}", f"--screenshot={path}", url], budget_ms)
    if not path.is_file() or path.stat().st_size == 0:
        raise RuntimeError(f"chromium wrote no screenshot (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return path


def dump_dom(url: str, budget_ms: int = 15000) -> str:
    """The DOM of ``url`` as serialized once its scripts have had ``budget_ms`` of virtual time."""
    done = _chromium(["--dump-dom", url], budget_ms)
    if done.returncode != 0 or not done.stdout:
        raise RuntimeError(f"chromium dumped no DOM (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Screenshot the runs of an experiment in a workspace's MLflow UI.")
    parser.add_argument("--home", type=Path, required=True, help="the workspace (W2S_HOME) whose store to show")
    parser.add_argument("--experiment", required=True, help="experiment name, e.g. the config's `experiment:`")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "mlflow_ui_runs.png",
                        help="where the runs table goes (the tests write the cells' comparison to mlflow_ui_sweep.png)")
    parser.add_argument("--width", type=int, default=1600)
    parser.add_argument("--height", type=int, default=1000)
    parser.add_argument("--budget-ms", type=int, default=15000, help="virtual time the page gets to render")
    args = parser.parse_args(argv)
    if chromium_binary() is None:
        parser.error("chromium is not installed (Debian: apt-get install chromium)")
    with mlflow_ui(args.home) as base:
        try:
            url = runs_url(base, experiment_id(base, args.experiment))
        except urllib.error.HTTPError as e:
            parser.error(f"no experiment {args.experiment!r} in {args.home} (HTTP {e.code})")
        path = screenshot(url, args.out, (args.width, args.height), args.budget_ms)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
