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


@pytest.fixture(scope="session")
def tiny_vit(tmp_path_factory) -> Path:
    """A randomly initialised ViT and its image processor, saved as a hub download would be
    (no vision model can be downloaded here)."""
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    path = tmp_path_factory.mktemp("tiny-vit")
    config = ViTConfig(
        image_size=16, patch_size=8, num_channels=3, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=64,
    )
    ViTModel(config).save_pretrained(path)
    ViTImageProcessor(size={"height": 16, "width": 16}).save_pretrained(path)
    return path
