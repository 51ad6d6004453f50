"""The workspace's local Prefect server (flows/server.py): started on first use, reused,
replaced when it dies, stopped when idle or asked, never two at once; and what a command
imports on its fast paths."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import ROOT, run_w2s, w2s_env

from flows.server import is_our_server, stop_server

SMALL = Path(__file__).parent / "small.yaml"
HEAVY = ("torch", "lightning", "transformers", "peft", "sklearn")


def _status(home: Path) -> dict:
    done = run_w2s(home, "server", "status", "--json", PREFECT_API_URL=None)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _start(home: Path, **variables) -> subprocess.CompletedProcess:
    done = run_w2s(home, "server", "start", PREFECT_API_URL=None, **variables)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_started_on_first_use_reused_replaced_when_killed_and_stopped_whole(tmp_path):
    home = tmp_path / "home"
    assert _status(home)["running"] is False
    try:
        _start(home)
        first = _status(home)
        assert first["running"] and first["healthy"] and first["url"].startswith("http://127.0.0.1:")
        assert os.getpgid(first["pid"]) == first["pid"], "the server leads a process group of its own"
        assert (home / "server" / "server.log").is_file() and (home / "prefect" / "prefect.db").is_file()

        _start(home)  # a second command finds it
        assert _status(home)["pid"] == first["pid"]

        os.kill(first["pid"], signal.SIGKILL)  # a crash: detected, and the next command starts another
        deadline = time.monotonic() + 10
        while is_our_server(first["pid"]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _status(home)["running"] is False
        _start(home)
        second = _status(home)
        assert second["healthy"] and second["pid"] != first["pid"]
    finally:
        stopped = run_w2s(home, "server", "stop", PREFECT_API_URL=None)
    assert stopped.returncode == 0 and f"pid {second['pid']}" in stopped.stderr
    assert not _group_alive(second["pid"]) and not (home / "server" / "state.json").exists()
    assert _status(home)["running"] is False


@pytest.mark.slow
def test_commands_started_at_once_share_one_server(tmp_path):
    home = tmp_path / "home"
    starts = [
        subprocess.Popen([sys.executable, "-m", "flows.cli", "server", "start"], env=w2s_env(home, PREFECT_API_URL=None),
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    try:
        outcomes = [p.communicate(timeout=300) for p in starts]
        assert all(p.returncode == 0 for p in starts), outcomes
        pid = _status(home)["pid"]
        ours = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _serves(p, home)]
        assert [int(p.name) for p in ours] == [pid]
    finally:
        stop_server(home)


def _serves(proc: Path, home: Path) -> bool:
    try:
        argv = (proc / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"flows.server" in argv and str(home).encode() in argv


@pytest.mark.slow
def test_an_idle_server_stops_itself(tmp_path):
    home = tmp_path / "home"
    _start(home, W2S_SERVER_IDLE_MINUTES="0.02")  # ~1 s once no command holds it
    pid = json.loads((home / "server" / "state.json").read_text())["pid"]
    deadline = time.monotonic() + 60
    while _group_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _group_alive(pid), "the idle server is still running"
    assert not (home / "server" / "state.json").exists()
    assert "idle for" in (home / "server" / "server.log").read_text()


_IMPORTS = """
import json, sys
from flows.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(m for m in sys.modules if m.split(".")[0] in %r)}))
""" % (HEAVY + ("prefect", "mlflow"),)


def _modules_after(home: Path, *args: str) -> tuple[int, set[str]]:
    done = subprocess.run([sys.executable, "-c", _IMPORTS, *args], env=w2s_env(home), cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["code"], {m.split(".")[0] for m in result["modules"]}


@pytest.mark.slow
def test_a_fully_cached_run_imports_neither_torch_nor_lightning(tmp_path):
    home = tmp_path / "home"
    first = run_w2s(home, "run", str(SMALL), "seed=9201", "--json")
    assert first.returncode == 0, first.stderr[-2000:]
    code, modules = _modules_after(home, "run", str(SMALL), "seed=9201")
    assert code == 0
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))
    assert {"prefect", "mlflow"} <= modules  # it did run a flow and record it


def test_bad_input_and_plan_import_nothing_heavy(tmp_path):
    home = tmp_path / "home"
    code, modules = _modules_after(home, "run", "method=magic")
    assert code == 2 and not modules, modules  # refused before Prefect, MLflow or torch load
    code, modules = _modules_after(home, "plan", str(SMALL))
    assert code == 0 and not modules & set(HEAVY), modules


@pytest.mark.slow
def test_a_failed_run_prints_its_one_line_and_nothing_after_it(tmp_path):
    """Prefect's temporary API (--no-server), as it shuts down after a failed run, once
    printed a sqlalchemy traceback after the error line; tried several times over."""
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    home = tmp_path / "home"
    for attempt in range(4):
        done = run_w2s(home, "run", "--no-server", f"source.path={empty}", PREFECT_API_URL=None, timeout=300)
        assert done.returncode == 2, done.stderr[-2000:]
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "cannot be parsed as csv" in lines[0], (attempt, done.stderr[-3000:])
    assert not (home / "server").exists()  # the temporary API: no local server was started


@pytest.mark.slow
def test_the_overhead_benchmark_measures_all_four_kinds_of_run(tmp_path):
    """bench/overhead.py once through (the figures it reports are measured by running it)."""
    out = tmp_path / "overhead.json"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "overhead.py"), "--repeats", "1", "--training-repeats", "2",
                           "--out", str(out)], env=w2s_env(tmp_path / "unused", PREFECT_API_URL=None), cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    medians = report["medians"]
    for key in ("a_cold_run_s", "a_server_start_s", "b_cached_rerun_s", "c_floor_one_task_flow_s",
                "c_floor_same_settings_s", "d_cached_rerun_ephemeral_s"):
        assert medians[key] > 0, key
    assert medians["a_server_start_s"] < medians["a_cold_run_s"]
    assert len(report["b_cached_rerun_s"]) == len(report["d_cached_rerun_ephemeral_s"]) == 2
