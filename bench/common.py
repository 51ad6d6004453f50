"""What the benchmarks share: a clean environment per workspace, timed subprocesses, the machine."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

EMPTY_FLOW = """
from prefect import flow

@flow(name="empty")
def empty():
    return None

empty()
"""


def env(home: Path) -> dict:
    """The environment of a user whose workspace (and Prefect home) is ``home``."""
    out = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
    out.update(W2S_HOME=str(home), PREFECT_HOME=str(home / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_LOGGING_LEVEL="WARNING")
    return out


def timed(cmd: list[str], environment: dict) -> tuple[float, str]:
    """Wall seconds of ``cmd`` run as its own process, and its stdout; a failure ends the benchmark."""
    start = time.perf_counter()
    done = subprocess.run(cmd, env=environment, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"benchmark command failed: {' '.join(cmd)}\n{done.stderr[-3000:]}")
    return seconds, done.stdout


def machine() -> dict:
    cpu = "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"platform": platform.platform(), "cpus": os.cpu_count(), "cpu": cpu, "python": platform.python_version()}


def stop_servers(folder: Path) -> None:
    """Stop the local Prefect server of every workspace under ``folder`` (each one's first
    ``w2s`` command started it)."""
    from flows.server import stop_server

    for server in folder.rglob("server/state.json"):
        stop_server(server.parent.parent)
