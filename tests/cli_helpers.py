"""``w2s`` in a subprocess, as a user runs it, with a workspace of its own.

By default the command talks to the test session's Prefect server (conftest.py), as a team
member's would to the team's. ``PREFECT_API_URL=None`` leaves it on its own: it then
starts the workspace's local server (stop it with ``stop_server``), or with
``W2S_SERVER="ephemeral"`` uses Prefect's temporary API.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def w2s_env(home: Path, **variables: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["W2S_HOME"] = str(home)
    if "PREFECT_API_URL" in variables and variables["PREFECT_API_URL"] is None:
        env.pop("PREFECT_HOME", None)  # on its own: Prefect's home is the workspace's, as a user's is
    for key, value in variables.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run_w2s(home: Path, *args: str, timeout: float = 300, cwd: Path | None = None, **variables: str | None):
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args], env=w2s_env(home, **variables), cwd=cwd or ROOT,
        capture_output=True, text=True, timeout=timeout,
    )
