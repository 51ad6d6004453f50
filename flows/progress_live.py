"""The live view of a board (flows/progress.py) on a terminal, drawn with rich on stderr.

    ✓ ingest ×2        cached      0.1s
    ✓ train_weak       done        1.9s
    ⠹ train_strong     running    12.4s
        steps          ━━━━━━━━━━━━╸━━━━━━━━━━━━━━━━━  120/400  35.2/s  ETA 8.0s
    · evaluate         waiting

A sweep, study or ladder adds a bar of its cells (or pairs) on top and, having many stages,
lists only the running and failed ones, with a count of the rest. The view is redrawn a
few times a second from a thread of rich's; what else writes to stderr meanwhile (a
warning) is printed above it. When the command ends the last frame stays on screen.
"""

from __future__ import annotations

import logging
import sys
import time

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from flows.progress import Bar, Board, Row, Snapshot, format_rate, format_seconds, row_label

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
MARKS = {"waiting": ("·", "dim"), "cached": ("✓", "dim green"), "done": ("✓", "green"), "failed": ("✗", "bold red")}
BAR_WIDTH = 30


class LiveView:
    """``with LiveView(board): ...`` draws ``board`` on stderr while the block runs."""

    def __init__(self, board: Board, console: Console | None = None, refresh_per_second: float = 8):
        self.board = board
        self.console = console or Console(stderr=True)
        self.live = Live(self, console=self.console, refresh_per_second=refresh_per_second, transient=False,
                         redirect_stdout=False, redirect_stderr=True)
        self._rerouted: list[logging.StreamHandler] = []

    def __enter__(self) -> LiveView:
        stderr = sys.stderr
        self.live.start()
        # Log lines (a stage's warning) would be drawn over the view: they go through rich's
        # stand-in for stderr instead, which prints them above it.
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is stderr:
                handler.setStream(sys.stderr)
                self._rerouted.append(handler)
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.live.refresh()
        finally:
            self.live.stop()
            for handler in self._rerouted:
                handler.setStream(sys.stderr)

    def __rich__(self) -> Group:
        return render(self.board.snapshot())


def render(snap: Snapshot) -> Group:
    parts = []
    if snap.cells is not None:
        top = Table.grid(padding=(0, 1))
        top.add_row(*bar_cells(snap.cells.as_bar(), snap.now, label=snap.cells.unit))
        parts.append(top)
    many = snap.cells is not None
    rows = [r for r in snap.rows if r.state in ("running", "failed")] if many else snap.rows
    bars: dict[tuple | None, list[Bar]] = {}
    for bar in snap.bars:
        bars.setdefault(bar.row, []).append(bar)
    grid = Table.grid(padding=(0, 1))
    for row in rows:
        grid.add_row(*stage_cells(row, snap.now))
        for bar in bars.get((row.scope, row.name), []):
            grid.add_row("", *bar_cells(bar, snap.now))
    if rows:
        parts.append(grid)
    if many:
        counts = {s: sum(r.state == s for r in snap.rows) for s in ("running", "done", "cached", "failed")}
        parts.append(Text(f"stages: {counts['running']} running, {counts['done']} done, {counts['cached']} cached"
                          + (f", {counts['failed']} failed" if counts["failed"] else ""), style="dim"))
    return Group(*parts)


def stage_cells(row: Row, now: float) -> list:
    if row.state == "running":
        mark, style = SPINNER[int(time.monotonic() * 10) % len(SPINNER)], "yellow"
    else:
        mark, style = MARKS[row.state]
    runs = row.runs + row.running
    name = row_label(row) + (f" ×{runs}" if runs > 1 else "")
    state = Text(f"{row.state:<8}", style=style)
    if row.state != "waiting":
        state.append(f" {format_seconds(row.elapsed(now)):>7}")
    return [Text(mark, style=style), Text(name), state]


def bar_cells(bar: Bar, now: float, label: str | None = None) -> list:
    """A meter's name, its bar, and ``done/total unit  rate  ETA``."""
    unit = f" {bar.unit}" if bar.unit else ""
    count = f"{bar.done}/{bar.total}{unit}" if bar.total else f"{bar.done}{unit}"
    rate, eta = bar.rate(now), bar.eta(now)
    figures = "  ".join([count, *([format_rate(rate)] if rate else []), *([f"ETA {format_seconds(eta)}"] if eta is not None else [])])
    line = Table.grid(padding=(0, 2))
    line.add_row(ProgressBar(total=bar.total or None, completed=bar.done, width=BAR_WIDTH), Text(figures))
    return [Text(f"  {label or bar.what}", style="cyan"), line]
