"""The workspace's own Prefect server: started by the first ``w2s`` command that needs the
Prefect API, reused by every command after it, stopped once idle or by ``w2s server stop``.

Prefect's temporary API, started afresh by every command, costs ~9 s (importing the server
code, starting it, building its routes); a server that stays up costs a command nothing.
There is one server per workspace, not per user: the workspace already holds everything a
run makes (stage cache, artifacts, MLflow store), so the flow-run history lives beside
them, deleting a workspace leaves nothing behind, and two workspaces never share a
database. Its files, under ``W2S_HOME/server``:

- ``state.json``: pid, port and start time of the running server, written by the server
  once it listens, removed when it stops;
- ``server.log``: its output;
- ``start.lock``: held while a command checks on or starts the server (two commands never
  start two) and by a server that is stopping (no command picks up a dying server);
- ``clients.lock``: every command holds it shared while it runs; the server stops itself
  once nobody has held it for ``W2S_SERVER_IDLE_MINUTES`` (default 30).

The server listens on loopback only and runs in a session of its own, so that stopping
its process group stops it whole. ``PREFECT_API_URL`` (a team's server) or
``W2S_SERVER=ephemeral`` (``--no-server``: Prefect's temporary API) bypass it.

This module imports nothing heavy at the top: a command that finds its server running
pays only for a health check.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

START_TIMEOUT = 180.0  # a first start migrates a new database: ~10 s here, more on a busy machine
DEFAULT_IDLE_MINUTES = 30.0
SERVER_MODULE = "flows.server"


class ServerError(RuntimeError):
    """The local server could not be started or did not come up; the message says where its log is."""


@dataclass(frozen=True)
class LocalServer:
    """A running (or starting) server of a workspace, as its state file describes it."""

    folder: Path
    pid: int
    port: int
    started: float
    idle_seconds: float

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Until the API answers; a server that dies or hangs meanwhile is an error naming its log."""
        deadline = time.monotonic() + timeout
        while not healthy(self.port):
            if not is_our_server(self.pid):
                raise ServerError(f"the local Prefect server stopped while starting: {_log_tail(self.folder)}")
            if time.monotonic() > deadline:
                raise ServerError(f"the local Prefect server did not answer within {timeout:.0f} s: {_log_tail(self.folder)}")
            time.sleep(0.05)


def server_folder(home: Path) -> Path:
    return home / "server"


def idle_seconds() -> float:
    raw = os.environ.get("W2S_SERVER_IDLE_MINUTES", "")
    try:
        minutes = float(raw) if raw else DEFAULT_IDLE_MINUTES
    except ValueError:
        raise ServerError(f"W2S_SERVER_IDLE_MINUTES={raw!r} is not a number of minutes") from None
    return max(minutes, 0.0) * 60


def ensure_server(home: Path, as_client: bool = True) -> LocalServer:
    """The workspace's server, started if none runs; with ``as_client`` this process counts
    as its client until it exits. Returns as soon as the server has its port: call
    ``wait_ready`` before using it, after whatever else start-up has to do (imports overlap
    with the server's own start)."""
    folder = server_folder(home)
    folder.mkdir(parents=True, exist_ok=True)
    with _flock(folder / "start.lock", fcntl.LOCK_EX):
        server = read_state(folder)
        if server is not None and not (healthy(server.port) or time.time() - server.started < START_TIMEOUT):
            _stop_group(server.pid)  # alive but not answering long after its start: hung
            server = None
        if server is None:
            server = _spawn(home, folder)
        if as_client:
            _hold_as_client(folder)
    return server


def read_state(folder: Path) -> LocalServer | None:
    """The server the state file names, if that process is still ours; stale files are removed."""
    try:
        raw = json.loads((folder / "state.json").read_text())
        server = LocalServer(folder, int(raw["pid"]), int(raw["port"]), float(raw["started"]), float(raw["idle_seconds"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not is_our_server(server.pid):
        _remove_state(folder, server.pid)
        return None
    return server


def stop_server(home: Path) -> LocalServer | None:
    """Stop the workspace's server (its whole process group); returns what was stopped."""
    folder = server_folder(home)
    if not folder.is_dir():
        return None
    with _flock(folder / "start.lock", fcntl.LOCK_EX):
        server = read_state(folder)
        if server is not None:
            _stop_group(server.pid)
            _remove_state(folder, server.pid)
        return server


def server_status(home: Path) -> dict:
    folder = server_folder(home)
    server = read_state(folder) if folder.is_dir() else None
    status = {"workspace": str(home), "running": server is not None, "log": str(folder / "server.log")}
    if server is not None:
        status.update(
            pid=server.pid, url=server.url, api_url=server.api_url, healthy=healthy(server.port),
            started=time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(server.started)),
            idle_stop_minutes=round(server.idle_seconds / 60, 2), commands_running=_clients_active(folder),
        )
    return status


def healthy(port: int, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=timeout) as answer:
            return answer.status == 200
    except (OSError, ValueError):
        return False


def is_our_server(pid: int) -> bool:
    """Whether ``pid`` runs this module (not a recycled pid of something else)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False
    except OSError:  # no procfs: only liveness can be told
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return SERVER_MODULE.encode() in cmdline.split(b"\0")


# --- the client's side -------------------------------------------------------------------


def _spawn(home: Path, folder: Path) -> LocalServer:
    env = {**os.environ, "W2S_HOME": str(home)}
    env.pop("PREFECT_API_URL", None)
    with open(folder / "server.log", "ab") as log:
        log.write(f"--- starting {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
        log.flush()
        process = subprocess.Popen(
            [sys.executable, "-m", SERVER_MODULE, "--home", str(home), "--idle-seconds", str(idle_seconds()),
             "--launched-at", repr(time.time())],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=folder, env=env,
            start_new_session=True,  # its own process group: stopped whole, untouched by the caller's Ctrl-C
        )
    _SPAWNED.append(process)  # kept referenced: reaped by this process if it dies while we run
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        server = read_state(folder)
        if server is not None and server.pid == process.pid:
            return server
        if process.poll() is not None:
            raise ServerError(f"the local Prefect server exited at start (status {process.returncode}): {_log_tail(folder)}")
        if time.monotonic() > deadline:
            _stop_group(process.pid)
            raise ServerError(f"the local Prefect server did not start: {_log_tail(folder)}")
        time.sleep(0.02)


_SPAWNED: list[subprocess.Popen] = []
_CLIENT_LOCKS: list[int] = []


def _hold_as_client(folder: Path) -> None:
    """A shared hold on ``clients.lock`` for the rest of this process's life (the kernel
    drops it when the process ends, however it ends); touching the file marks the use."""
    if _CLIENT_LOCKS:
        return
    fd = os.open(folder / "clients.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_SH)
    os.utime(fd)
    _CLIENT_LOCKS.append(fd)


def _clients_active(folder: Path) -> bool:
    try:
        fd = os.open(folder / "clients.lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the trial lock too
    return False


def _stop_group(pid: int, grace: float = 10.0) -> None:
    """SIGTERM to the server's process group, SIGKILL if it has not gone after ``grace``."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            for process in _SPAWNED:
                process.poll()  # reap our own child, else it lingers as a zombie
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)


def _remove_state(folder: Path, pid: int) -> None:
    try:
        if json.loads((folder / "state.json").read_text()).get("pid") == pid:
            (folder / "state.json").unlink()
    except (OSError, ValueError):
        pass


def _log_tail(folder: Path, lines: int = 3) -> str:
    log = folder / "server.log"
    try:
        tail = [line for line in log.read_text(errors="replace").splitlines() if line.strip()][-lines:]
    except OSError:
        tail = []
    return " | ".join(tail) + f" (log: {log})" if tail else f"see {log}"


@contextmanager
def _flock(path: Path, how: int) -> Iterator[int]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, how)
        yield fd
    finally:
        os.close(fd)


# --- the server's side ------------------------------------------------------------------


def migrate_prefect_db(prefect_home: Path) -> None:
    """Bring Prefect's SQLite database in ``prefect_home`` to the installed Prefect's schema,
    once per Prefect version, under an flock: two processes migrating one new database
    together collide (alembic: "expected to match one row")."""
    import prefect

    marker = prefect_home / f".migrated-{prefect.__version__}"
    prefect_home.mkdir(parents=True, exist_ok=True)
    with _flock(prefect_home / ".migrate.lock", fcntl.LOCK_EX):
        if not ((prefect_home / "prefect.db").exists() and marker.exists()):
            from prefect.server.database import provide_database_interface
            from prefect.utilities.asyncutils import run_coro_as_sync

            run_coro_as_sync(provide_database_interface().create_db())
            marker.touch()
    os.environ["PREFECT_API_DATABASE_MIGRATE_ON_START"] = "false"


def serve(home: Path, idle: float, launched: float | None = None) -> None:
    """Run the server until it is stopped or idle: bind a loopback port first and publish it
    (a client waiting on the state file can go on with its own start-up), then migrate the
    database if needed and serve the API with Prefect's services (the scheduler among them)."""
    folder = server_folder(home)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    state = {"pid": os.getpid(), "port": sock.getsockname()[1], "started": time.time(), "idle_seconds": idle}
    tmp = folder / f".state-{os.getpid()}.json"
    tmp.write_text(json.dumps(state))
    os.replace(tmp, folder / "state.json")

    prefect_home = Path(os.environ.setdefault("PREFECT_HOME", str(home / "prefect")))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_UI_ENABLED", "false")  # the MLflow UI is this workbench's; the API is what runs use
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "WARNING")
    try:
        migrate_prefect_db(prefect_home)
        import uvicorn
        from prefect.server.api.server import create_app

        server = uvicorn.Server(uvicorn.Config(create_app(final=True), log_level="warning", access_log=False))
        threading.Thread(target=_watch, args=(server, folder, idle, launched or time.time()), daemon=True).start()
        server.run(sockets=[sock])
    finally:
        _remove_state(folder, os.getpid())


def _watch(server, folder: Path, idle: float, launched: float) -> None:
    """Log how long the start took (what a cold run waits for), then stop once idle.

    Uvicorn is asked to stop once no command has held ``clients.lock`` for ``idle``
    seconds. The decision is taken under ``start.lock``, kept until the process ends, so
    that no command finds this server while it stops."""
    while not (server.started or server.should_exit):
        time.sleep(0.02)
    print(f"--- ready after {time.time() - launched:.2f} s on port {server.servers[0].sockets[0].getsockname()[1]}"
          if server.started else "--- stopped before it was ready", flush=True)
    poll = min(5.0, max(idle / 4, 0.2))
    last_busy = time.time()
    while not server.should_exit:
        time.sleep(poll)
        if _clients_active(folder):
            last_busy = time.time()
            continue
        try:
            last_busy = max(last_busy, (folder / "clients.lock").stat().st_mtime)
        except OSError:
            pass
        if time.time() - last_busy < idle:
            continue
        fd = os.open(folder / "start.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # a command is checking on us right now: it will use us
            os.close(fd)
            continue
        if _clients_active(folder):
            os.close(fd)
            continue
        _remove_state(folder, os.getpid())
        print(f"--- idle for {idle / 60:.1f} min: stopping", flush=True)
        server.should_exit = True
        return  # fd stays open: start.lock is held until this process has exited


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m flows.server", description="A workspace's local Prefect server.")
    parser.add_argument("--home", required=True, type=Path)
    parser.add_argument("--idle-seconds", type=float, default=DEFAULT_IDLE_MINUTES * 60)
    parser.add_argument("--launched-at", type=float, help="when the command that started it launched it (epoch seconds)")
    args = parser.parse_args(argv)
    serve(args.home.resolve(), args.idle_seconds, args.launched_at)


if __name__ == "__main__":
    main()
