"""``w2s report`` end to end: a run of each kind recorded by the CLI as a user records it,
its page written by the CLI, then read by headless Chromium from the file alone (a
``file://`` address: no server, no network), through bench/report_screenshot.py's own
functions. The test's pictures stay in its folder; the committed ones in bench/results/
(report_experiment.png, report_sweep.png, report_study.png) are made by that script.
"""

import importlib
import json
import sys
from pathlib import Path

import pytest
from cli_helpers import run_w2s

ROOT = Path(__file__).resolve().parents[1]


def _load_bench(name: str):
    """A bench/ script (bench/ is no package: its folder goes on the path)."""
    sys.path.insert(0, str(ROOT / "bench"))
    return importlib.import_module(name)


bench = _load_bench("report_screenshot")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bench.browser.chromium_binary() is None, reason="chromium is not installed (Debian: apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """One workspace for the three kinds: the sweep's cells reuse the experiment's stages."""
    return tmp_path_factory.mktemp("reports") / "home"


def _record(home: Path, kind: str) -> dict:
    done = run_w2s(home, *bench.MAKE[kind], "--json", timeout=900)
    assert done.returncode == 0, f"w2s {' '.join(bench.MAKE[kind])}\n{done.stderr[-3000:]}"
    return json.loads(done.stdout)


def _page(home: Path, kind: str, printed: dict) -> dict:
    """``w2s report RUN_ID`` to its default place, then the page as Chromium shows it."""
    run_id = printed["mlflow_run_id"]
    done = run_w2s(home, "report", run_id)
    assert done.returncode == 0, done.stderr
    path = home / "reports" / f"{run_id}.html"
    assert done.stdout.strip() == str(path)
    facts = bench.inspect_page(path, home / f"report_{kind}.png")
    assert bench.problems(facts) == []  # figures embedded and non-blank, nothing fetched from elsewhere
    assert facts["kind"] == kind and len(facts["images"]) == 1
    assert facts["sections"][:2] == ["Headline metrics", "Figures"]
    for stage in printed["stages"]:
        assert stage in facts["text"], f"stage {stage} missing"
    assert printed["config_hash"] in facts["text"] and run_id in facts["text"]
    picture = (home / f"report_{kind}.png").read_bytes()
    assert picture[:8] == b"\x89PNG\r\n\x1a\n" and len(picture) > 30_000
    return facts


def _table_cells(markdown: str) -> list[str]:
    """The cells of a Markdown table's data rows."""
    rows = [line for line in markdown.splitlines() if line.startswith("|") and not line.startswith("|---")][1:]
    return [cell.strip() for row in rows for cell in row.strip("|").split("|") if cell.strip()]


def test_an_experiment_page_shows_its_headline_figure_stages_and_provenance(home):
    printed = _record(home, "experiment")
    facts = _page(home, "experiment", printed)
    out = home / "elsewhere" / "FILE.html"
    done = run_w2s(home, "report", printed["mlflow_run_id"], "--out", str(out))
    assert done.returncode == 0 and done.stdout.strip() == str(out)
    assert out.read_text().split("<footer>")[0] == (home / "reports" / f"{printed['mlflow_run_id']}.html").read_text().split("<footer>")[0]
    m = printed["metrics"]
    assert f"PGR {m['pgr']:.3f} (accuracy), {m['pgr_auroc']:.3f} (AUROC)" in facts["text"]
    assert f"accuracy\t{m['acc_weak']:.3f}\t{m['acc_ceiling']:.3f}\t{m['acc_w2s']:.3f}" in facts["text"]
    assert facts["images"][0]["alt"] == "accuracy_by_group.png"
    # A stage's own run is not a report's subject: the error names the run to report instead.
    from mlflow.tracking import MlflowClient

    c = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    stage = c.search_runs([c.get_run(printed["mlflow_run_id"]).info.experiment_id],
                          f"tags.`mlflow.parentRunId` = '{printed['mlflow_run_id']}'", max_results=1)
    if stage:  # a run whose stages were all cached has no stage runs
        refused = run_w2s(home, "report", stage[0].info.run_id)
        assert refused.returncode == 2 and f"w2s report {printed['mlflow_run_id']}" in refused.stderr


def test_a_sweep_page_shows_the_sweeps_own_table_from_its_cells_runs(home):
    printed = _record(home, "sweep")
    facts = _page(home, "sweep", printed)
    assert "4 cells finished, 0 failed" in facts["text"] or printed["failed"]
    # mean ± 95% CI per row, recomputed from the cells' runs, equal to the sweep's own table
    for cell in _table_cells(printed["table"]):
        assert cell in facts["text"], f"{cell!r} of the sweep's table is not on the page"
    for cell in printed["cells"]:
        assert cell["mlflow_run_id"] in facts["text"]
    assert facts["images"][0]["alt"] == "sweep.png"


def test_a_study_page_shows_the_table_the_study_logged(home):
    printed = _record(home, "study")
    facts = _page(home, "study", printed)
    for cell in _table_cells(printed["table"].split("\n\n")[1]):  # the accuracy table, mean ± CI per grid point
        assert cell in facts["text"], f"{cell!r} of the study's table is not on the page"
    assert facts["images"][0]["alt"] == "overlap_study.png" and "0 … 1 (2 seeds)" in facts["text"]
