"""Deployments: the schedules of deployments/prefect.yaml, and a run triggered on real servers."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from flows.deployments import PREFECT_YAML, load_deployments
from flows.study_config import SweepConfig
from models.methods import METHODS

ROOT = Path(__file__).resolve().parents[1]
SMALL = Path(__file__).parent / "small.yaml"


def test_the_nightly_schedule_is_registered_as_written(prefect_harness):
    from prefect.client.orchestration import get_client

    written = {d["name"]: d for d in yaml.safe_load(PREFECT_YAML.read_text())["deployments"]}
    nightly = written["nightly-benchmark"]["schedules"][0]
    [deployment] = load_deployments(only=["nightly-benchmark"])
    deployment_id = deployment.apply()
    with get_client(sync_client=True) as client:
        registered = client.read_deployment(deployment_id)
    assert registered.name == "nightly-benchmark"
    assert registered.parameters == written["nightly-benchmark"]["parameters"]
    [schedule] = registered.schedules
    assert schedule.active
    assert schedule.schedule.cron == nightly["cron"] and schedule.schedule.timezone == nightly["timezone"]
    # Its parameters make a valid sweep: every cell's config is checked here, not at 03:00.
    sweep = SweepConfig.model_validate(registered.parameters)
    # The nightly benchmark runs registered methods only, three seeds each (a new method joins
    # it by its name in the grid, when it is worth running every night).
    methods = sweep.grid["method"]
    assert set(methods) <= set(METHODS) and len(sweep.combinations()) == 3 * len(methods)
    assert sweep.cell(sweep.combinations()[0]).strong.optimizer == "adam"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
    """A server in its own process group, so that it and every child can be stopped together."""
    return subprocess.Popen(cmd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
        deadline = time.monotonic() + wait  # children outlive the leader briefly
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)


def _wait_for(what: str, check, timeout: float, logs: list[Path]):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = check()
        except httpx.HTTPError:
            found = None
        if found:
            return found
        time.sleep(1)
    tails = "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in logs if p.exists())
    raise AssertionError(f"timed out waiting for {what}\n{tails}")


@pytest.mark.slow
def test_a_served_deployment_runs_on_a_real_prefect_server_and_reports_to_an_mlflow_server(tmp_path):
    """Team mode end to end: a Prefect server and an MLflow tracking server on loopback, the
    deployments served by `w2s serve`, the experiment deployment triggered through the API."""
    prefect_port, mlflow_port = _free_port(), _free_port()
    api = f"http://127.0.0.1:{prefect_port}/api"
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))
    } | {
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{mlflow_port}",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "W2S_HOME": str(tmp_path / "home"),
    }
    server_env = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
    logs = [tmp_path / "prefect-server.log", tmp_path / "mlflow-server.log", tmp_path / "serve.log"]
    procs = []
    try:
        procs.append(_start([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port",
                             str(prefect_port)], server_env, logs[0]))
        procs.append(_start([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(mlflow_port),
                             "--workers", "1", "--backend-store-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
                             "--artifacts-destination", str(tmp_path / "mlartifacts")], env, logs[1]))
        _wait_for("the Prefect server", lambda: httpx.get(f"{api}/health").status_code == 200, 120, logs)
        _wait_for("the MLflow server", lambda: httpx.get(f"http://127.0.0.1:{mlflow_port}/health").status_code == 200,
                  120, logs)
        procs.append(_start([sys.executable, "-m", "flows.cli", "serve"], env, logs[2]))

        def deployment():
            r = httpx.get(f"{api}/deployments/name/w2s-experiment-job/experiment")
            return r.json() if r.status_code == 200 else None

        found = _wait_for("w2s serve to register the deployments", deployment, 180, logs)
        params = {"config_file": str(SMALL), "overrides": ["seed=7", "experiment=w2s-deployed"]}

        def created():
            r = httpx.post(f"{api}/deployments/{found['id']}/create_flow_run", json={"parameters": params})
            # A server whose SQLite store is busy (the runner polls it too) answers 5xx: try again.
            assert r.status_code in (201, 500, 503), f"{r.status_code} {r.text}"
            return r.json() if r.status_code == 201 else None

        run = _wait_for("the flow run to be created", created, 60, logs)

        def finished():
            state = httpx.get(f"{api}/flow_runs/{run['id']}").json()["state"]["type"]
            assert state not in ("FAILED", "CRASHED", "CANCELLED"), state
            return state == "COMPLETED"

        _wait_for("the triggered flow run to complete", finished, 400, logs)

        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
        experiment = client.get_experiment_by_name("w2s-deployed")
        # Stage runs carry the flow run's tag too; the experiment's own run is the one without a stage.
        [mlflow_run] = client.search_runs(
            [experiment.experiment_id], f"tags.`prefect.flow_run_id` = '{run['id']}' and tags.`w2s.stage` IS NULL"
        )
        assert mlflow_run.info.status == "FINISHED" and mlflow_run.data.params["seed"] == "7"
        assert 0 <= mlflow_run.data.metrics["acc_w2s"] <= 1
        # The nightly schedule was registered by serve as well.
        nightly = httpx.get(f"{api}/deployments/name/w2s-sweep-job/nightly-benchmark").json()
        assert nightly["schedules"][0]["schedule"]["cron"] == "0 3 * * *"
    finally:
        for proc in reversed(procs):
            _stop(proc)
    for proc in procs:
        with pytest.raises(ProcessLookupError):
            os.killpg(proc.pid, 0)


@pytest.mark.slow
def test_the_work_pool_path_deploys_and_a_worker_runs_the_experiment(tmp_path):
    """As docs/operations.md says: a process work pool, `prefect deploy` with prefect.yaml, a run
    triggered from the command line, and a worker that picks it up."""
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    bin_dir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))} | {
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "W2S_HOME": str(tmp_path / "home"),
        "W2S_PROJECT_DIR": str(ROOT),
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
    }
    log = tmp_path / "prefect-server.log"
    server = _start([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)], env, log)
    env["PREFECT_API_URL"] = api

    def prefect(*args: str, timeout: int = 300) -> str:
        done = subprocess.run([str(bin_dir / "prefect"), *args], env=env, cwd=ROOT, capture_output=True, text=True,
                              timeout=timeout)
        assert done.returncode == 0, f"prefect {' '.join(args)}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        return done.stdout

    try:
        _wait_for("the Prefect server", lambda: httpx.get(f"{api}/health").status_code == 200, 120, [log])
        prefect("work-pool", "create", "w2s", "--type", "process")
        prefect("--no-prompt", "deploy", "--all", "--prefect-file", "deployments/prefect.yaml")
        out = prefect("deployment", "run", "w2s-experiment-job/experiment", "--param", f"config_file={SMALL}",
                      "--param", 'overrides=["seed=9"]')
        run_id = next(line.split()[-1] for line in out.splitlines() if "UUID" in line)
        prefect("worker", "start", "--pool", "w2s", "--run-once")
        state = httpx.get(f"{api}/flow_runs/{run_id}").json()["state"]["type"]
        assert state == "COMPLETED"
    finally:
        _stop(server)
    with pytest.raises(ProcessLookupError):
        os.killpg(server.pid, 0)
