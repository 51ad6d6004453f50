"""The MLflow UI, rendered in headless Chromium, shows the runs the CLI recorded, in its
model-training view, and a parent run's page shows its headline metrics and figure.

The store is built by the installed CLI in subprocesses, as a user builds it; the UI is
``w2s ui``, and the page is the address it prints; the page is rendered by a real browser,
because the UI is a single-page app whose runs table only exists once its scripts have
run. The test takes its picture of the sweep's runs in its own folder; the committed one,
bench/results/mlflow_ui_sweep.png, is made by bench/ui_screenshot.py.
"""

import importlib
import json
import os
import re
import shlex
import sys
import urllib.parse
from pathlib import Path

import pytest
from cli_helpers import run_w2s

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = "w2s-sweep"  # a sweep's experiment
SIZE = (1600, 1000)

DOC = ROOT / "docs" / "tracking.md"


def doc_commands(marker: str) -> list[list[str]]:
    """The ``w2s`` commands of docs/tracking.md's code block after ``<!-- marker -->``, split as a shell would."""
    block = re.search(rf"<!-- {marker} -->\n```bash\n(.*?)```", DOC.read_text(), re.S).group(1)
    return [shlex.split(line)[1:] for line in block.splitlines() if line.startswith("w2s ")]


# What fills the store, as the docs show it: a sweep of two methods × two seeds.
SWEEP, UI, COMPARE = doc_commands("ui-demo")


def _load_helper():
    """bench/ui_screenshot.py (bench/ is no package: its folder goes on the path)."""
    sys.path.insert(0, str(ROOT / "bench"))
    return importlib.import_module("ui_screenshot")


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


def _run_page(base: str, experiment: str, run_id: str, shows: str) -> tuple[str, list[dict]]:
    """A run's page once its description shows ``shows``: its text and its images."""
    with ui.browser.page(SIZE, ui.RETURNING_USER) as tab:
        tab.open(ui.run_url(base, experiment, run_id), until=f"document.body.innerText.includes({json.dumps(shows)})",
                 what=repr(shows))
        return tab.evaluate("document.body.innerText"), tab.evaluate(ui.browser.image_check_js())


def _artifact_images(images: list[dict], run_id: str) -> dict[str, dict]:
    """The run's artifacts among ``images``, by path (the UI's Markdown drops their alt text)."""
    found = {}
    for image in images:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(image["src"]).query)
        if "get-artifact" in image["src"] and query.get("run_uuid") == [run_id]:
            found[query["path"][0]] = image
    return found


@pytest.mark.slow
@pytest.mark.skipif(ui.chromium_binary() is None, reason="chromium is not installed (Debian: apt-get install chromium)")
def test_mlflow_ui_shows_the_runs_in_the_training_view_and_is_screenshot(tmp_path):
    home = tmp_path / "home"
    assert UI == ["ui"] and COMPARE[:2] == ["compare", "--experiment"]
    done = run_w2s(home, *SWEEP, "--json", timeout=600)
    assert done.returncode == 0, f"w2s {' '.join(SWEEP)}\n{done.stderr[-2000:]}"
    printed = json.loads(done.stdout)
    cell_ids = [c["mlflow_run_id"] for c in printed["cells"]]
    assert len(cell_ids) == 4
    compared = run_w2s(home, *COMPARE)
    assert compared.returncode == 0, compared.stderr
    assert all(c["mlflow_run_id"][:8] in compared.stdout for c in printed["cells"])
    header = compared.stdout.splitlines()[0].split()
    # What differs between the cells: the method, its own parameters (xent has none), the seed.
    assert header[:3] == ["run", "id", "method"] and "seed" in header and "method.alpha_max" in header

    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    cells = [client.get_run(i) for i in cell_ids]
    names = {r.info.run_name for r in cells}
    assert names == {f"method={m},seed={s}" for m in ("xent", "aux_conf") for s in (0, 1)}
    sweep_id = printed["mlflow_run_id"]
    sweep_name = client.get_run(sweep_id).info.run_name
    assert client.get_experiment_by_name(EXPERIMENT).tags["mlflow.experimentKind"] == "custom_model_development"

    with ui.mlflow_ui(home) as served:  # no --experiment: the newest run's experiment, the sweep's
        port = urllib.parse.urlsplit(served.base).port
        pgid = _server_pid(port)
        assert os.getpgid(pgid) == pgid, "the server should lead its own process group"

        experiment = ui.experiment_id(served.base, EXPERIMENT)
        assert {r.info.experiment_id for r in cells} == {experiment}
        assert served.url == f"{served.base}/#/experiments/{experiment}/runs?workflowType=machine_learning"
        # The address w2s ui printed opens the runs table in the model-training view: no GenAI
        # overview, traces or judges. That page, the sweep unfolded, is the picture.
        dom = ui.sweep_picture(served, experiment, sweep_id, cell_ids, home / "mlflow_ui_sweep.png", SIZE)
        markers = ui.view_markers(dom)
        assert markers["training"] == list(ui.TRAINING_MARKERS) and markers["genai"] == []
        assert sweep_name in dom and all(name in dom for name in names)

        # A cell's page: its headline metrics and its figure, served by the UI, in its description.
        cell = printed["cells"][0]
        headline = f"PGR {cell['pgr']:.3f} (accuracy)"
        text, images = _run_page(served.base, experiment, cell["mlflow_run_id"], headline)
        assert f"weak {cell['acc_weak']:.3f}, ceiling {cell['acc_ceiling']:.3f}, W2S {cell['acc_w2s']:.3f}" in text
        figures = _artifact_images(images, cell["mlflow_run_id"])
        assert list(figures) == ["accuracy_by_group.png"]
        assert figures["accuracy_by_group.png"]["width"] > 100 and figures["accuracy_by_group.png"]["colours"] > 10
        # The sweep's page: its own table (mean ± 95% CI over seeds) and its figure.
        row = next(line for line in printed["table"].splitlines() if line.startswith("| xent |"))
        text, images = _run_page(served.base, experiment, sweep_id, "mean ± 95% CI over seeds")
        assert all(value.strip() in text for value in row.strip("|").split("|"))
        figures = _artifact_images(images, sweep_id)
        assert list(figures) == ["sweep.png"] and figures["sweep.png"]["colours"] > 10, figures

        # The comparison page shows every cell, side by side, in the training view as well.
        dom = ui.dump_dom(ui.compare_url(served.base, experiment, cell_ids))
        missing = sorted(n for n in names if n not in dom)
        assert not missing, f"the UI's comparison page does not show {missing}"
        assert ui.view_markers(dom)["genai"] == []

    data = (home / "mlflow_ui_sweep.png").read_bytes()
    assert _png_size(data) == SIZE
    assert len(data) > 20_000 and len(set(data)) > 200, "the screenshot looks blank"

    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)
