"""One workspace and one Prefect server per test session, set up before Prefect is imported.

The session's server is the workspace's own local server (flows/server.py), started in
the background as the tests are collected. Every in-process flow and every ``w2s``
subprocess reaches it through ``PREFECT_API_URL``, instead of each starting Prefect's
temporary API (~9 s apiece). Tests of the local server itself and of the temporary API
(``--no-server``) use workspaces of their own without that variable (cli_helpers.py).
"""

import os
import tempfile
from pathlib import Path

import pytest

_SESSION_HOME = Path(tempfile.mkdtemp(prefix="w2s-tests-"))
os.environ["W2S_HOME"] = str(_SESSION_HOME / "home")
os.environ.pop("MLFLOW_TRACKING_URI", None)
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("W2S_SERVER", None)
os.environ["PREFECT_HOME"] = str(_SESSION_HOME / "prefect")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
# A server a test starts and forgets stops itself soon after that test's process ends.
os.environ["W2S_SERVER_IDLE_MINUTES"] = "2"
# Nothing in the tests may come from the hub; offline mode fails at once instead of retrying.
os.environ["HF_HUB_OFFLINE"] = "1"

from flows.server import ensure_server, stop_server  # noqa: E402  (after the environment above)

_SERVER = ensure_server(Path(os.environ["W2S_HOME"]))
os.environ["PREFECT_API_URL"] = _SERVER.api_url

SMALL_CONFIG = Path(__file__).parent / "small.yaml"


def pytest_sessionfinish(session, exitstatus):
    """Stop the session's server; any other local server a test started and left running
    fails the session (it is stopped too): the product must never leave one behind."""
    stop_server(Path(os.environ["W2S_HOME"]))
    factory = getattr(session.config, "_tmp_path_factory", None)  # where tmp_path folders live
    roots = [str(_SESSION_HOME), *([str(factory.getbasetemp())] if factory else [])]
    left = [home for home in _local_servers() if home.startswith(tuple(roots))]
    for home in left:
        stop_server(Path(home))
    if left:
        print(f"\nlocal Prefect servers left running by the tests (now stopped): {left}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _local_servers() -> list[str]:
    """The workspaces whose local server runs on this machine (read off /proc)."""
    homes = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().decode().split("\0") if proc.name.isdigit() else []
        except OSError:
            continue
        if "flows.server" in argv and "--home" in argv:
            homes.append(argv[argv.index("--home") + 1])
    return homes


@pytest.fixture(scope="session", autouse=True)
def prefect_server():
    """The session's server answers before the first test (it started while tests were collected)."""
    _SERVER.wait_ready()
    return _SERVER


@pytest.fixture(scope="session")
def prefect_harness(prefect_server):
    """What flow tests ask for: the session's Prefect API (kept under this name)."""
    return prefect_server


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
