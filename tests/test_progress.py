"""What a command shows while it runs (flows/progress.py, flows/progress_live.py): meters
of long loops under their stage, from many threads at once; a live view with bars on a
terminal; plain lines, no control characters and at most one progress line per interval
elsewhere; nothing but the result with --quiet."""

from __future__ import annotations

import fcntl
import io
import logging
import os
import re
import select
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import ROOT, run_w2s, w2s_env

from flows import progress
from models.progress import meter, reporting

SMALL = Path(__file__).parent / "small.yaml"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture
def board():
    """A board installed for one test, and none after it."""
    made = []

    def install(live: bool = False, interval: float = 0.0) -> progress.Board:
        made.append(progress.Board(live=live, interval=interval))
        progress.install(made[-1])
        return made[-1]

    yield install
    progress.install(None)


def test_without_a_board_meters_and_stages_are_no_ops():
    assert not reporting()
    with progress.stage("train_weak") as run, meter("steps", 10) as m:
        m.advance(3)
        run.cached = True
    assert m.done == 3 and progress.current() is None


def test_meters_hang_under_their_stage_and_cell_across_threads(board):
    b = board(live=True)
    b.expect_cells(8)
    readings = {}

    def cell(i: int):
        with progress.cell(f"c{i}"), progress.stage("train_strong") as run:
            with meter("steps", 100) as m:
                for _ in range(100):
                    m.advance()
                readings[i] = next(bar for bar in b.snapshot().bars if bar.row == (f"c{i}", "train_strong")).done
            run.cached = i % 2 == 0

    threads = [threading.Thread(target=cell, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    snap = b.snapshot()
    assert readings == {i: 100 for i in range(8)}  # each meter counted its own loop, under its own row
    assert not snap.bars and snap.cells.done == 8
    assert {r.scope: r.state for r in snap.rows} == {f"c{i}": "cached" if i % 2 == 0 else "done" for i in range(8)}


def test_a_failed_stage_is_marked_and_drops_the_meters_it_left_open(board):
    b = board(live=True)
    with pytest.raises(ValueError):
        with progress.stage("train_strong"):
            meter("steps", 10).advance()
            raise ValueError("boom")
    snap = b.snapshot()
    assert [r.state for r in snap.rows] == ["failed"] and not snap.bars


def test_a_stage_run_twice_is_cached_only_if_both_runs_were(board):
    b = board(live=True)
    b.plan(["ingest", "evaluate"])
    for cached in (True, False):
        with progress.stage("ingest") as run:
            run.cached = cached
    assert {r.name: (r.state, r.runs) for r in b.snapshot().rows} == {"ingest": ("done", 2), "evaluate": ("waiting", 0)}


def test_lines_are_throttled_and_plain(board, caplog):
    caplog.set_level(logging.INFO, logger="w2s")
    b = board(interval=3600)
    with progress.stage("train_ceiling"), meter("steps", 1000) as m:
        for _ in range(1000):
            m.advance()
    assert not [r for r in caplog.records if r.getMessage().startswith("progress")]
    b.interval = 0
    with progress.stage("train_ceiling"), meter("steps", 4) as m:
        for _ in range(4):
            time.sleep(0.01)
            m.advance()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("progress")]
    assert lines[-1].startswith("progress   train_ceiling: steps 4/4 (100%)"), lines
    assert not any(re.search(r"[\x1b\r]", line) for line in lines)


def test_the_live_view_draws_stages_and_a_bar_with_rate_and_eta(board):
    from rich.console import Console

    from flows.progress_live import render

    b = board(live=True)
    b.plan(["train_strong", "evaluate"])
    with progress.stage("train_strong"), meter("steps", 400) as m:
        m.update(100)
        b._bars[next(iter(b._bars))].started -= 10  # ten seconds in: 10 steps a second
        out = io.StringIO()
        Console(file=out, width=100, color_system=None).print(render(b.snapshot()))
    text = out.getvalue()
    assert re.search(r"train_strong\s+running", text) and re.search(r"evaluate\s+waiting", text), text
    assert re.search(r"steps\s+━+.*100/400\s+10\.0/s\s+ETA 30\.0s", text), text


def test_lightning_fits_count_their_steps_on_the_meter(board):
    from models.training import FitSpec, fit_classifier

    b = board(live=True)
    seen = []
    opened = b.open

    def recording_open(what, total, unit):
        seen.append((what, total))
        return opened(what, total, unit)

    b.open = recording_open
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 3)).astype(np.float32), np.eye(2)[rng.integers(0, 2, 40)]
    with progress.stage("train_weak"):
        fit_classifier(FitSpec(epochs=3), x, y, None, None, seed=0)
        fit_classifier(FitSpec(optimizer="adam", lr=0.01, epochs=2, batch_size=10), x, y, None, None, seed=0)
    assert seen == [("epochs", 3), ("steps", 8)]
    assert not b.snapshot().bars  # each fit closed its meter


# --- the command itself, on a terminal and off one ---

# A ceiling trained in small minibatches for long enough that its bar is seen moving.
LONG_CEILING = ("ceiling.optimizer=adam", "ceiling.lr=0.003", "ceiling.epochs=8", "ceiling.batch_size=8",
                "ceiling.patience=100")


def run_on_terminal(home: Path, *args: str, **variables: str) -> tuple[int, str, str]:
    """``w2s ARGS`` with stderr on a pseudo-terminal: its exit status, stdout, and what the terminal got."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {**w2s_env(home, **variables), "TERM": "xterm-256color"}
    proc = subprocess.Popen([sys.executable, "-m", "flows.cli", *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=slave, env=env, cwd=ROOT)
    os.close(slave)
    screen = b""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if select.select([master], [], [], 0.5)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the terminal's other end is closed: the command has exited
                break
            if not chunk:
                break
            screen += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    stdout = proc.stdout.read().decode()
    proc.stdout.close()
    return proc.wait(timeout=60), stdout, screen.decode(errors="replace")


@pytest.mark.slow
def test_on_a_terminal_the_run_shows_its_stages_and_a_moving_bar(tmp_path):
    code, stdout, screen = run_on_terminal(tmp_path / "home", "run", str(SMALL), *LONG_CEILING)
    assert code == 0, screen[-3000:]
    assert "\x1b[" in screen  # drawn, not written line by line
    text = ANSI.sub("", screen)
    readings = {}
    for done, total in re.findall(r"steps\s+━*[╸╺━\s]*(\d+)/(\d+)", text):
        readings.setdefault(total, set()).add(int(done))
    assert any(len(seen) >= 2 for seen in readings.values()), text[-3000:]  # the same bar, read twice as it moved
    last = text[text.rfind("ingest"):]  # the last frame stays on screen
    for name in ("train_weak", "train_ceiling", "train_strong", "evaluate"):
        assert re.search(rf"{name}\s+done", last), last
    assert "stages cached" in stdout and "\x1b" not in stdout  # the result, plain, on stdout


@pytest.mark.slow
def test_without_a_terminal_stage_lines_and_progress_lines_carry_no_control_characters(tmp_path):
    done = run_w2s(tmp_path / "home", "run", str(SMALL), *LONG_CEILING, W2S_PROGRESS_SECONDS="0.5")
    assert done.returncode == 0, done.stderr[-3000:]
    assert not re.search(r"[\x1b\r]", done.stderr + done.stdout)
    lines = done.stderr.splitlines()
    assert any(re.match(r"train_ceiling\s+computed", line) for line in lines), lines
    assert any(re.match(r"progress\s+train_ceiling: steps \d+/\d+", line) for line in lines), lines


@pytest.mark.slow
def test_quiet_prints_only_the_result(tmp_path):
    home = tmp_path / "home"
    code, stdout, screen = run_on_terminal(home, "run", str(SMALL), "--quiet")
    assert code == 0 and screen == "", screen[-2000:]  # no view, no stage line, on a terminal too
    assert stdout.lstrip().startswith("accuracy") and "stages cached" in stdout
    done = run_w2s(home, "run", str(SMALL), "--quiet", "--json")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout.count("\n") == 1 and done.stdout.startswith("{")
