"""The MLflow UI, rendered in headless Chromium, shows the runs the CLI recorded.

The store is built by the installed CLI in subprocesses, as a user builds it; the UI is
``w2s ui``; the page is rendered by a real browser, because the UI is a single-page app
whose runs table only exists once its scripts have run. The screenshot is kept in
bench/results/mlflow_ui_sweep.png.
"""

import importlib.util
import json
import os
import urllib.parse
from pathlib import Path

import pytest
from cli_helpers import run_w2s

ROOT = Path(__file__).resolve().parents[1]
SMALL = Path(__file__).resolve().parent / "small.yaml"
EXPERIMENT = "w2s-sweep"  # a sweep's experiment
SCREENSHOT = ROOT / "bench" / "results" / "mlflow_ui_sweep.png"
SIZE = (1600, 1000)

# What fills the store: a sweep of two methods × two seeds, printing JSON that names its runs.
SWEEP = ["sweep", str(SMALL), "method=xent,aux_conf", "seed=0,1", "--name", "ui-demo", "--json"]


def _load_helper():
    """bench/ui_screenshot.py by path (bench/ is no package, and `tests` may be shadowed)."""
    spec = importlib.util.spec_from_file_location("ui_screenshot", ROOT / "bench" / "ui_screenshot.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ui = _load_helper()


def _server_pid(port: int) -> int:
    """The pid of the process serving MLflow on ``port`` (``w2s ui`` execs into ``mlflow ui``)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"mlflow" in argv and b"ui" in argv and b"--port" in argv and str(port).encode() in argv:
            return int(proc.name)
    raise AssertionError(f"no `mlflow ui --port {port}` process found")


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@pytest.mark.slow
@pytest.mark.skipif(ui.chromium_binary() is None, reason="chromium is not installed (Debian: apt-get install chromium)")
def test_mlflow_ui_shows_the_runs_and_is_screenshot(tmp_path):
    home = tmp_path / "home"
    done = run_w2s(home, *SWEEP, timeout=600)
    assert done.returncode == 0, f"w2s {' '.join(SWEEP)}\n{done.stderr[-2000:]}"
    printed = json.loads(done.stdout)
    cell_ids = [c["mlflow_run_id"] for c in printed["cells"]]
    assert len(cell_ids) == 4

    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    cells = [client.get_run(i) for i in cell_ids]
    names = {r.info.run_name for r in cells}
    assert names == {f"method={m},seed={s}" for m in ("xent", "aux_conf") for s in (0, 1)}
    sweep_name = client.get_run(printed["mlflow_run_id"]).info.run_name

    with ui.mlflow_ui(home) as base:
        port = urllib.parse.urlsplit(base).port
        pgid = _server_pid(port)
        assert os.getpgid(pgid) == pgid, "the server should lead its own process group"

        experiment = ui.experiment_id(base, EXPERIMENT)
        assert {r.info.experiment_id for r in cells} == {experiment}
        # The runs table shows the sweep (its cells nested, collapsed under it) ...
        assert sweep_name in ui.dump_dom(ui.runs_url(base, experiment))
        # ... and the comparison page every cell, side by side: that is the screenshot.
        url = ui.compare_url(base, experiment, cell_ids)
        dom = ui.dump_dom(url)
        missing = sorted(n for n in names if n not in dom)
        assert not missing, f"the UI's comparison page does not show {missing}"

        ui.screenshot(url, SCREENSHOT, SIZE)

    data = SCREENSHOT.read_bytes()
    assert _png_size(data) == SIZE
    assert len(data) > 20_000 and len(set(data)) > 200, "the screenshot looks blank"

    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)
