"""One workspace per test session, and Prefect pointed at it before Prefect is imported."""

import os
import tempfile
from pathlib import Path

import pytest

_SESSION_HOME = Path(tempfile.mkdtemp(prefix="w2s-tests-"))
os.environ["W2S_HOME"] = str(_SESSION_HOME / "home")
os.environ.pop("MLFLOW_TRACKING_URI", None)
os.environ.pop("PREFECT_API_URL", None)
os.environ["PREFECT_HOME"] = str(_SESSION_HOME / "prefect")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
# Nothing in the tests may come from the hub; offline mode fails at once instead of retrying.
os.environ["HF_HUB_OFFLINE"] = "1"

SMALL_CONFIG = Path(__file__).parent / "small.yaml"


@pytest.fixture(scope="session")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness():
        yield


@pytest.fixture
def small_config_path() -> Path:
    return SMALL_CONFIG
