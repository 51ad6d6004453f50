"""The workspace folder (``W2S_HOME``) that holds artifacts, caches and the MLflow store."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_HOME = ".w2s"


def home() -> Path:
    return Path(os.environ.get("W2S_HOME", DEFAULT_HOME)).resolve()


def artifacts_root() -> Path:
    return home() / "artifacts"


def prefect_results() -> Path:
    return home() / "prefect-results"


def mlflow_uri() -> str:
    """The tracking URI: ``MLFLOW_TRACKING_URI`` for a team server, else the workspace's SQLite store."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{home() / 'mlflow.db'}"


def mlflow_artifact_root() -> str:
    return (home() / "mlartifacts").as_uri()
