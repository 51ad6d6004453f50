"""What a running command is doing: its stages, the cells of a sweep or study, and the meters
of long loops inside stages (models/progress.py), kept on one thread-safe board.

The runner (flows/runner.py) marks each stage running and then cached, done or failed; a
sweep, study or ladder says how many cells (or pairs) it has and marks each one finished;
a meter opened inside a stage hangs under that stage's row, found through a context
variable that Prefect carries into the threads a task runs in. Two displays read the board:
on a terminal, a live view (flows/progress_live.py); elsewhere, one line per stage as the
runner has always written, plus at most one progress line every ``W2S_PROGRESS_SECONDS``
(15 by default) while a stage's loop runs. Without an installed board every call is a no-op.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Iterator

from models import progress as meters

log = logging.getLogger("w2s")

DEFAULT_INTERVAL = 15.0
STATES = ("waiting", "running", "cached", "done", "failed")
MIN_RATE_SECONDS = 0.5  # a rate read off a shorter time says little


@dataclass
class Row:
    """A stage as the display shows it; a stage that runs several times (one per source) is one row."""

    name: str
    scope: str | None = None  # the cell or pair it runs for, in a sweep, study or ladder
    state: str = "waiting"
    running: int = 0  # runs in progress
    runs: int = 0  # runs finished
    seconds: float = 0.0  # of finished runs
    started: float | None = None  # the earliest run in progress
    all_cached: bool = True  # every finished run was a cache hit

    def elapsed(self, now: float) -> float:
        return self.seconds + (now - self.started if self.started is not None else 0.0)


@dataclass
class Bar:
    """An open meter: ``done`` of ``total`` ``what``, since ``started``, under ``row``."""

    what: str
    unit: str
    total: int | None
    row: tuple | None
    started: float
    done: int = 0

    def rate(self, now: float) -> float | None:
        seconds = now - self.started
        return self.done / seconds if self.done and seconds >= MIN_RATE_SECONDS else None

    def eta(self, now: float) -> float | None:
        rate = self.rate(now)
        if rate is None or self.total is None or self.done >= self.total:
            return None
        return max(self.total - self.done, 0) / rate


@dataclass
class Cells:
    """The cells (or pairs) of a sweep, study or ladder."""

    unit: str
    total: int
    started: float
    finished: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)

    @property
    def done(self) -> int:
        return len(self.finished)

    def as_bar(self) -> Bar:
        return Bar(self.unit, "", self.total, None, self.started, self.done)


@dataclass
class Snapshot:
    """A consistent copy of the board for one frame of a display."""

    rows: list[Row]
    bars: list[Bar]
    cells: Cells | None
    now: float


class Board:
    """The command's stages, cells and meters. ``live``: a display polls it (no lines are
    written but errors'); else stage lines and throttled progress lines go to the log."""

    def __init__(self, live: bool = False, interval: float | None = None):
        self.live = live
        self.interval = progress_interval() if interval is None else interval
        self._lock = threading.Lock()
        self._rows: dict[tuple, Row] = {}
        self._bars: dict[int, Bar] = {}
        self._next = 0
        self._cells: Cells | None = None
        self._last_line = time.monotonic()

    # --- what the command knows before it runs ---
    def plan(self, names: list[str], scope: str | None = None) -> None:
        """Stages known to come, shown as waiting until they start."""
        with self._lock:
            for name in names:
                self._rows.setdefault((scope, name), Row(name, scope))

    def expect_cells(self, total: int, unit: str = "cells") -> None:
        with self._lock:
            self._cells = Cells(unit, total, time.monotonic())

    # --- stages ---
    def stage_started(self, name: str, scope: str | None) -> tuple:
        key = (scope, name)
        with self._lock:
            row = self._rows.setdefault(key, Row(name, scope))
            if row.running == 0:
                row.started = time.monotonic()
            row.running += 1
            if row.state != "failed":
                row.state = "running"
        return key

    def stage_ended(self, key: tuple, outcome: str, seconds: float) -> None:
        """``outcome``: cached, done or failed. A row run several times is cached only if every run was."""
        with self._lock:
            row = self._rows[key]
            row.running -= 1
            row.runs += 1
            row.seconds += seconds
            if row.running == 0:
                row.started = None
                for token in [t for t, b in self._bars.items() if b.row == key]:
                    del self._bars[token]  # a loop that left its meter open (it raised) ends with its stage
            row.all_cached = row.all_cached and outcome == "cached"
            if row.state == "failed" or outcome == "failed":
                row.state = "failed"
            elif row.running:
                row.state = "running"
            else:
                row.state = "cached" if row.all_cached else "done"

    # --- cells ---
    def cell_finished(self, label: str, failed: bool = False) -> None:
        """Idempotent: a cell may be reported by its own thread and again by the flow that waited on it."""
        with self._lock:
            if self._cells is None:
                return
            self._cells.finished.add(label)
            if failed:
                self._cells.failed.add(label)
        self._maybe_line()

    # --- meters (models.progress.Reporter) ---
    def open(self, what: str, total: int | None, unit: str) -> int:
        row = _current_row.get()
        with self._lock:
            self._next += 1
            self._bars[self._next] = Bar(what, unit, total, row, time.monotonic())
            return self._next

    def update(self, token: int, done: int, total: int | None) -> None:
        with self._lock:
            bar = self._bars.get(token)
            if bar is None:
                return
            bar.done, bar.total = done, total
        self._maybe_line()

    def close(self, token: int) -> None:
        with self._lock:
            self._bars.pop(token, None)

    # --- reading it ---
    def snapshot(self) -> Snapshot:
        with self._lock:
            cells = self._cells
            if cells is not None:
                cells = replace(cells, finished=set(cells.finished), failed=set(cells.failed))
            return Snapshot([replace(r) for r in self._rows.values()], [replace(b) for b in self._bars.values()], cells,
                            time.monotonic())

    def _maybe_line(self) -> None:
        """Without a live display: one line on what the open meters say, at most once per interval."""
        if self.live:
            return
        now = time.monotonic()
        with self._lock:
            if now - self._last_line < self.interval:
                return
            self._last_line = now
        line = progress_line(self.snapshot())
        if line:
            log.info("%s", line)


def progress_line(snap: Snapshot) -> str:
    """``progress  cells 3/8 (38%) 0.1/s ETA 50s; train_strong: steps 120/400 (30%) 35.2/s ETA 8s``."""
    parts = []
    if snap.cells is not None:
        parts.append(reading(snap.cells.as_bar(), snap.now))
    rows = {(r.scope, r.name): r for r in snap.rows}
    for bar in snap.bars:
        row = rows.get(bar.row)
        where = f"{row_label(row)}: " if row is not None else ""
        parts.append(where + reading(bar, snap.now))
    return "progress   " + "; ".join(parts) if parts else ""


def row_label(row: Row) -> str:
    return f"{row.scope} {row.name}" if row.scope else row.name


def reading(bar: Bar, now: float) -> str:
    """``steps 120/400 (30%) 35.2/s ETA 8s``: a bar's count, share, rate and time left."""
    unit = f" {bar.unit}" if bar.unit else ""
    if bar.total:
        text = f"{bar.what} {bar.done}/{bar.total}{unit} ({100 * bar.done / bar.total:.0f}%)"
    else:
        text = f"{bar.what} {bar.done}{unit}"
    rate, eta = bar.rate(now), bar.eta(now)
    if rate is not None:
        text += f" {format_rate(rate)}"
    if eta is not None:
        text += f" ETA {format_seconds(eta)}"
    return text


def format_rate(rate: float) -> str:
    return f"{rate:.1f}/s" if rate >= 0.1 else f"{60 * rate:.1f}/min"


def format_seconds(seconds: float) -> str:
    """``8.2s``, ``1m10s``, ``2h05m``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def progress_interval() -> float:
    """Seconds between progress lines without a terminal: ``W2S_PROGRESS_SECONDS``, else 15."""
    raw = os.environ.get("W2S_PROGRESS_SECONDS")
    try:
        return max(float(raw), 0.0) if raw else DEFAULT_INTERVAL
    except ValueError:
        return DEFAULT_INTERVAL


# --- the process's board and the context a stage or cell runs in ---

_board: Board | None = None
_scope: ContextVar[str | None] = ContextVar("w2s_progress_scope", default=None)
_current_row: ContextVar[tuple | None] = ContextVar("w2s_progress_row", default=None)


def install(board: Board | None) -> None:
    """The board this process reports to (None: none), and the models' meters with it."""
    global _board
    _board = board
    meters.set_reporter(board)


def current() -> Board | None:
    return _board


def live() -> bool:
    """Whether a live display shows the stages (so the runner writes no line per stage)."""
    return _board is not None and _board.live


class StageRun:
    """What the runner tells the board of one stage call once it has an answer."""

    cached: bool = False


@contextmanager
def stage(name: str) -> Iterator[StageRun]:
    """A stage call: running inside, then cached or done (set ``.cached``), or failed if it raises.
    Meters opened inside hang under its row."""
    run = StageRun()
    board = _board
    if board is None:
        yield run
        return
    key = board.stage_started(name, _scope.get())
    token = _current_row.set(key)
    started = time.perf_counter()
    try:
        yield run
    except BaseException:
        board.stage_ended(key, "failed", time.perf_counter() - started)
        raise
    else:
        board.stage_ended(key, "cached" if run.cached else "done", time.perf_counter() - started)
    finally:
        _current_row.reset(token)


def expect_cells(total: int, unit: str = "cells") -> None:
    if _board is not None:
        _board.expect_cells(total, unit)


@contextmanager
def cell(label: str) -> Iterator[None]:
    """One cell (or pair) of a sweep, study or ladder: its stages' rows carry ``label``."""
    token = _scope.set(label)
    try:
        yield
    except BaseException:
        cell_finished(label, failed=True)
        raise
    else:
        cell_finished(label)
    finally:
        _scope.reset(token)


def cell_finished(label: str, failed: bool = False) -> None:
    if _board is not None:
        _board.cell_finished(label, failed)
