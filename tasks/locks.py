"""Per-cache-key locks for Prefect's SERIALIZABLE transactions, held with ``flock``.

Two cells of a sweep, or two runs on one ``W2S_HOME``, that need the same stage must not
both train it: the second waits for the first's lock, then finds its committed record and
reads it as a cache hit. Prefect's own file lock manager marks a lock by a file's
existence, so a run killed with SIGKILL leaves a lock that every later run waits on
forever. An ``flock`` belongs to an open file: the kernel releases it when its holder
dies, however it dies. Lock files are left in place (unlinking a locked file races with
the next opener); they are empty and one per stage key.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from functools import lru_cache
from pathlib import Path

import anyio

POLL_SECONDS = 0.05


class FlockLockManager:
    """Prefect's ``LockManager`` protocol over ``flock``: across threads (each acquire opens
    its own descriptor, and Linux flocks conflict between descriptors) and processes."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._held: dict[str, tuple[str, int]] = {}  # key -> (holder, descriptor)
        self._mutex = threading.Lock()

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.lock"

    def acquire_lock(self, key: str, holder: str, acquire_timeout: float | None = None, hold_timeout: float | None = None) -> bool:
        if self.is_lock_holder(key, holder):
            return True
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._path(key), os.O_RDWR | os.O_CREAT, 0o600)
        deadline = None if acquire_timeout is None else time.monotonic() + acquire_timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                time.sleep(POLL_SECONDS)
        with self._mutex:
            self._held[key] = (holder, fd)
        return True

    async def aacquire_lock(self, key: str, holder: str, acquire_timeout: float | None = None, hold_timeout: float | None = None) -> bool:
        return await anyio.to_thread.run_sync(self.acquire_lock, key, holder, acquire_timeout, hold_timeout)

    def release_lock(self, key: str, holder: str) -> None:
        # Prefect may release twice (a nested transaction is committed again by its parent).
        with self._mutex:
            if self._held.get(key, ("",))[0] != holder:
                return
            _, fd = self._held.pop(key)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def is_locked(self, key: str) -> bool:
        with self._mutex:
            if key in self._held:
                return True
        try:
            fd = os.open(self._path(key), os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        finally:
            os.close(fd)

    def is_lock_holder(self, key: str, holder: str) -> bool:
        with self._mutex:
            return self._held.get(key, ("",))[0] == holder

    def wait_for_lock(self, key: str, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.is_locked(key):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(POLL_SECONDS)
        return True

    async def await_for_lock(self, key: str, timeout: float | None = None) -> bool:
        return await anyio.to_thread.run_sync(self.wait_for_lock, key, timeout)


@lru_cache(maxsize=None)
def lock_manager(directory: Path) -> FlockLockManager:
    """One manager per lock folder and process: it remembers which locks this process holds."""
    return FlockLockManager(directory)
