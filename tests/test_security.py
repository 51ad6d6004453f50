"""What the workbench loads, keeps and writes: no pickled code, manifests only, nothing
outside the workspace and the output folders the user names."""

import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from flows.server import stop_server
from tasks.manifest import Manifest

ROOT = Path(__file__).resolve().parent.parent
SMALL = Path(__file__).parent / "small.yaml"
PACKAGES = ("flows", "tasks", "models")


def _sources():
    for package in PACKAGES:
        yield from (ROOT / package).rglob("*.py")


def test_checkpoints_and_arrays_load_without_pickle():
    """torch.load only with weights_only=True, np.load never with allow_pickle=True, no pickle module."""
    loads = 0
    for path in _sources():
        text = path.read_text()
        for call in re.findall(r"torch\.load\(.*", text):
            loads += 1
            assert "weights_only=True" in call, f"{path.name}: {call}"
        for call in re.findall(r"np\.load\(.*", text):
            loads += 1
            assert "allow_pickle=False" in call, f"{path.name}: {call}"
        assert not re.search(r"^\s*(import pickle|from pickle|import cloudpickle|import dill)", text, re.M), path.name
        assert "yaml.load(" not in text and "trust_remote_code=True" not in text, path.name
    assert loads >= 2  # the readers exist: this checked them


def test_yaml_config_tags_are_never_executed(tmp_path):
    marker = tmp_path / "ran"
    config = tmp_path / "evil.yaml"
    config.write_text(f'weak: !!python/object/apply:os.system ["touch {marker}"]\n')
    env = {**os.environ, "W2S_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, "-m", "flows.cli", "plan", str(config)], env=env, capture_output=True, text=True)
    assert done.returncode == 2 and "evil.yaml" in done.stderr
    assert not marker.exists()


@pytest.mark.slow
def test_a_run_writes_only_into_its_workspace_and_the_named_output(tmp_path):
    """A user's home, working folder and temp folder are left as they were; the stage cache
    holds JSON manifests only."""
    user_home, cwd, tmp, out = (tmp_path / n for n in ("user", "cwd", "tmp", "out"))
    for d in (user_home, cwd, tmp):
        d.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PREFECT_", "MLFLOW_", "XDG_", "HF_", "MPL", "TORCH", "TRANSFORMERS_"))}
    env.update(HOME=str(user_home), TMPDIR=str(tmp), W2S_HOME=str(tmp_path / "ws"), HF_HUB_OFFLINE="1",
               PYTHONPATH=str(ROOT))
    try:  # the default path: the workspace's own Prefect server, started by the command
        done = subprocess.run(
            [sys.executable, "-m", "flows.cli", "sweep", str(SMALL), "method=xent,bootstrap", "seed=9108", "--out", str(out)],
            env=env, cwd=cwd, capture_output=True, text=True, timeout=600,
        )
    finally:
        stop_server(tmp_path / "ws")
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "ws" / "server" / "server.log").is_file()
    written = {str(p.relative_to(tmp_path)) for d in (user_home, cwd, tmp) for p in d.rglob("*")}
    assert not written, sorted(written)[:20]
    assert {p.name for p in out.iterdir()} == {"sweep.md", "sweep.png", "sweep.json"}
    records = list((tmp_path / "ws" / "prefect-results").iterdir())
    assert records
    for record in records:
        body = json.loads(record.read_text())
        assert body["metadata"]["serializer"]["type"] == "json"
        result = json.loads(body["result"])
        if "__exc_type__" not in result:  # a failed attempt's error, as Prefect keeps it
            module, _, kind = result["__class__"].rpartition(".")  # one of the project's artifact kinds
            assert module in ("tasks.artifacts", "tasks.grid_artifacts"), (record.name, result["__class__"])
            assert issubclass(getattr(importlib.import_module(module), kind), Manifest)
            assert set(result["data"]) >= {"stage", "key", "path", "fingerprint"}


def test_servers_listen_on_loopback_by_default():
    from flows.cli import _parser
    from flows.study_config import SweepConfig
    from flows.sweep import task_runner

    assert _parser().parse_args(["ui"]).host == "127.0.0.1"
    cluster = task_runner(SweepConfig(grid={"seed": [0, 1]}, runner="dask", workers=2)).cluster_kwargs
    assert cluster["host"] == "127.0.0.1" and cluster["dashboard_address"].startswith("127.0.0.1:")
