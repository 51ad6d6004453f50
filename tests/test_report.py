"""``w2s report`` and what a parent run records for the MLflow UI.

Runs are recorded into a real MLflow store of a fresh workspace by flows/tracking.py's own
functions (the ones the flows call), with chosen metrics, so that every figure the report
shows can be checked against what was recorded; the HTML formatting is checked on its own.
The command line in subprocesses is the slow test here; end-to-end runs of each kind,
rendered in Chromium, are in test_report_pages.py.
"""

import html
import importlib
import math
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cli_helpers import run_w2s, w2s_env
from scipy.stats import t

from flows import tracking
from flows.config import ExperimentConfig, build_config, load_config
from flows.mlflow_ui import experiment_url, served_experiment
from flows.report import ReportError, gather, run_kind, write_report
from flows.report_html import Figure, Markdown, RunReport, Table, markdown_html, render, table_html
from flows.run_note import MAX_NOTE, NOTE_TAG, experiment_note, table_note
from flows.study_config import OverlapStudyConfig, SweepConfig, cell_label
from tasks import plots
from tasks import tracking as store

SMALL = Path(__file__).parent / "small.yaml"
STAGES = {
    "ingest": {"cached": True, "seconds": 0.125, "runs": 2, "computed": 0, "retries": 0},
    "train_weak": {"cached": False, "seconds": 1.5, "runs": 1, "computed": 1, "retries": 0},
}


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("W2S_HOME", str(home))
    return home


def _figure(path: Path, heights: list[float]) -> Path:
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.bar(range(len(heights)), heights, color="tab:blue")
    plots.save(fig, path)
    return path


def _experiment_metrics(w2s: float, weak: float = 0.70, ceiling: float = 0.90) -> dict:
    return {
        "acc_weak": weak, "acc_ceiling": ceiling, "acc_w2s": w2s, "pgr": (w2s - weak) / (ceiling - weak),
        "pgr_auroc": 0.61, "acc_hard_weak": 0.52, "acc_hard_ceiling": 0.88, "acc_hard_w2s": 0.79,
        "auroc_weak": 0.80, "auroc_ceiling": 0.95, "auroc_w2s": 0.90,
        "agreement": 0.81, "agreement_teacher_right": 0.93, "agreement_teacher_wrong": 0.42,
    }


def _record_experiment(tmp_path, config: ExperimentConfig, metrics: dict, name: str = "xent-seed0"):
    figure = _figure(tmp_path / "accuracy_by_group.png", [0.7, 0.9, 0.85])
    with tracking.parent_run(config, "flow-run-1", name) as run:
        tracking.record_outcome(run, metrics, STAGES, [figure])
    return run.parent_run_id, figure


def test_an_experiment_run_is_reported_from_what_the_store_holds(workspace, tmp_path):
    config = load_config(SMALL, ["seed=7", "method=aux_conf"])
    metrics = _experiment_metrics(0.85)
    run_id, figure = _record_experiment(tmp_path, config, metrics)

    report = gather(run_id[:8])  # the run summary prints the first eight characters
    assert (report.kind, report.run_id, report.name, report.experiment) == ("experiment", run_id, "xent-seed0", "w2s-tests")
    line, table, agreement = report.headline
    assert "**PGR 0.750**" in line.text and "(accuracy), 0.610 (AUROC)" in line.text and "`aux_conf`" in line.text
    assert table.rows[0] == ["accuracy", "0.700", "0.900", "0.850"]
    assert table.rows[1] == ["hard-only points", "0.520", "0.880", "0.790"]
    assert table.rows[2] == ["AUROC", "0.800", "0.950", "0.900"]
    assert "0.810 of test points" in agreement.text and "wrong 0.420" in agreement.text
    assert [(f.name, f.data, f.mime) for f in report.figures] == [("accuracy_by_group.png", figure.read_bytes(), "image/png")]
    assert report.stages.rows == [["ingest", "cached", "0.12", "2", "0"], ["train_weak", "computed", "1.50", "1", "1"]]
    facts = dict(report.provenance)
    assert facts["config hash"] == config.fingerprint() and facts["seeds"] == "7"
    assert facts["git commit"] == tracking.git_commit() and facts["Prefect flow run"] == "flow-run-1"
    assert facts["status"] == "FINISHED" and facts["MLflow store"] == store.mlflow_uri()
    assert report.config == config.to_yaml() and "config.yaml" in report.config_source

    page = render(report)
    assert page.count('<img src="data:image/png;base64,') == 1 and "<script" not in page.lower()
    assert html.escape(config.to_yaml().splitlines()[0]) in page

    path = write_report(run_id)
    assert path == workspace / "reports" / f"{run_id}.html"
    assert path.read_text().split("<footer>")[0] == page.split("<footer>")[0]  # the footer says when it was written


def test_a_parent_run_describes_itself_to_the_mlflow_ui(workspace, tmp_path):
    """The run page's description: the headline in its first line, the figure by the UI's own
    artifact address; the experiment is declared a model-training one; the kind is a tag."""
    run_id, _ = _record_experiment(tmp_path, load_config(SMALL), _experiment_metrics(0.86))
    c = store.client()
    run = c.get_run(run_id)
    note = run.data.tags[NOTE_TAG]
    assert note.splitlines()[0].startswith("**PGR 0.800** (accuracy), 0.610 (AUROC) · test accuracy weak 0.700")
    assert "| hard-only | 0.520 | 0.880 | 0.790 |" in note
    assert f"![accuracy_by_group.png](get-artifact?path=accuracy_by_group.png&run_uuid={run_id})" in note
    assert f"`w2s report {run_id}`" in note
    assert run.data.tags["w2s.kind"] == "experiment"
    experiment = c.get_experiment(run.info.experiment_id)
    assert experiment.tags[store.EXPERIMENT_KIND_TAG] == store.TRAINING_KIND
    assert {a.path for a in c.list_artifacts(run_id)} == {"accuracy_by_group.png", "config.yaml", "stages.json"}


def _sweep_config() -> SweepConfig:
    base = yaml.safe_load(SMALL.read_text())
    return build_config([{"base": base, "grid": {"method": ["xent", "aux_conf"], "seed": [0, 1]}, "name": "rep"}],
                        schema=SweepConfig)


def test_a_sweep_is_reported_with_mean_and_ci_over_seeds_computed_from_its_cells(workspace, tmp_path):
    config = _sweep_config()
    w2s = {("xent", 0): 0.80, ("xent", 1): 0.84, ("aux_conf", 0): 0.86, ("aux_conf", 1): None}  # None: it fails
    with tracking.parent_run(config, "flow-run-2", "sweep-rep", tags={"w2s.sweep": "rep"}) as run:
        for axes in config.combinations():
            value = w2s[(axes["method"], axes["seed"])]
            tags = {"w2s.sweep": "rep", "w2s.cell": cell_label(axes), **{f"w2s.grid.{k}": str(v) for k, v in axes.items()}}
            try:
                with tracking.parent_run(config.cell(axes), "flow-run-2", cell_label(axes), within=run, tags=tags) as cell:
                    if value is None:
                        raise RuntimeError("the cell failed")
                    tracking.record_outcome(cell, _experiment_metrics(value, weak=0.70 + axes["seed"] / 100), STAGES, [])
            except RuntimeError:
                pass
        table = tmp_path / "sweep.md"
        table.write_text("Sweep `rep`: its own table\n")
        files = [table, _figure(tmp_path / "sweep.png", [0.5, 0.6])]
        tracking.finish_study(run, STAGES, files, {"cells": 3, "failed_cells": 1}, None)

    report = gather(run.parent_run_id)
    assert report.kind == "sweep"
    summary, headline = report.headline
    assert summary.text.startswith("3 cells finished, 1 failed.")
    assert headline.columns == ["method", "seeds", "weak", "ceiling", "W2S", "PGR"]
    xent, aux_conf = headline.rows
    half = t.ppf(0.975, 1) * abs(0.84 - 0.80) / 2  # Student t, one degree of freedom: sd / sqrt(2) = |a - b| / 2
    assert xent[:2] == ["xent", "2"] and xent[4] == f"{0.82:.3f} ± {half:.3f}"
    assert xent[2] == f"{0.705:.3f} ± {t.ppf(0.975, 1) * 0.01 / 2:.3f}" and xent[3] == "0.900 ± 0.000"
    assert aux_conf == ["aux_conf", "1", "0.700", "0.900", "0.860", f"{(0.86 - 0.70) / 0.2:.3f}"]  # one seed: no CI
    cells = dict(report.sections)["Cells"]
    assert [r[:2] for r in cells.rows] == [
        ["method=xent,seed=0", "FINISHED"], ["method=xent,seed=1", "FINISHED"],
        ["method=aux_conf,seed=0", "FINISHED"], ["method=aux_conf,seed=1", "FAILED"],
    ]
    assert dict(report.provenance)["seeds"] == "0, 1" and [f.name for f in report.figures] == ["sweep.png"]
    note = store.client().get_run(run.parent_run_id).data.tags[NOTE_TAG]
    assert note.startswith("Sweep `rep`: its own table") and "get-artifact?path=sweep.png" in note


def test_a_study_is_reported_with_the_table_it_logged(workspace, tmp_path):
    config = load_config(None, ["seeds=2", "overlap_counts=[5,40]"], OverlapStudyConfig)
    table = tmp_path / "overlap_study.md"
    table.write_text("Test accuracy, mean ± 95% CI over seeds\n\n| overlap ratio | weak |\n|---|---|\n| 0.024 | 0.666 ± 0.155 |\n")
    files = [table, _figure(tmp_path / "overlap_study.png", [1, 2]), tmp_path / "overlap_study.json"]
    files[2].write_text("{}")
    with tracking.parent_run(config, None, "overlap-study") as run:
        tracking.finish_study(run, STAGES, files, {"checks_passed": 4}, None)
    report = gather(run.parent_run_id)
    assert report.kind == "study" and report.headline == [Markdown(table.read_text())]
    assert dict(report.provenance)["seeds"] == "0 … 1 (2 seeds)"
    page = render(report)
    assert "<td>0.666 ± 0.155</td>" in page and page.count("data:image/png;base64,") == 1


def test_runs_recorded_before_the_kind_tag_are_told_apart_by_their_tags_and_name():
    assert run_kind({"w2s.kind": "study"}, "x") == "study"
    assert run_kind({"w2s.sweep": "s"}, "sweep-s") == "sweep"
    assert run_kind({"w2s.sweep": "s", "w2s.cell": "seed=0"}, "seed=0") == "experiment"
    assert run_kind({}, "methods-study") == "study" and run_kind({}, "xent-seed0") == "experiment"


def test_what_cannot_be_reported_is_one_line(workspace, tmp_path):
    with pytest.raises(ReportError, match="no MLflow store at .*no run has been recorded"):
        gather("0" * 32)
    assert not (workspace / "mlflow.db").exists()  # looking did not create one
    store.client()  # an empty store
    with pytest.raises(ReportError, match="holds no runs"):
        gather("0" * 32)
    run_id, _ = _record_experiment(tmp_path, load_config(SMALL), _experiment_metrics(0.8))
    with pytest.raises(ReportError, match=f"no run {'0' * 32} in the MLflow store"):
        gather("0" * 32)
    with pytest.raises(ReportError, match="is not an MLflow run id"):
        gather("not-a-run")
    other = "f" if run_id[0] != "f" else "e"
    with pytest.raises(ReportError, match="no run whose id starts with"):
        gather(other * 6)


@pytest.mark.slow
def test_the_cli_reports_in_one_line_and_never_imports_torch(workspace, tmp_path):
    missing = run_w2s(workspace, "report", "0" * 32)
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.strip().splitlines() == [f"w2s: error: no MLflow store at {workspace / 'mlflow.db'}: "
                                                   f"no run has been recorded in {workspace}"]
    run_id, _ = _record_experiment(tmp_path, load_config(SMALL), _experiment_metrics(0.8))
    unknown = run_w2s(workspace, "report", "a" * 32)
    assert unknown.returncode == 2 and len(unknown.stderr.strip().splitlines()) == 1 and "no run aaaa" in unknown.stderr
    blocked = run_w2s(workspace, "report", run_id, "--out", "/proc/w2s-report.html")
    assert blocked.returncode == 2 and blocked.stderr.startswith("w2s: error: cannot write the report to")
    out = tmp_path / "page" / "r.html"
    probe = ("import sys; from flows.cli import main; code = main(['report', sys.argv[1], '--out', sys.argv[2]]); "
             "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'lightning', 'transformers'}), code)")
    done = subprocess.run([sys.executable, "-c", probe, run_id[:10], str(out)], env=w2s_env(workspace),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [str(out), "[] 0"] and out.read_text().startswith("<!DOCTYPE html>")
    assert "Downloading artifacts" not in done.stderr
    refused = run_w2s(workspace, "ui", "--experiment", "nope")
    assert refused.returncode == 2 and refused.stderr.strip().splitlines() == [
        "w2s: error: experiment 'nope' not found (experiments: Default, w2s-tests)"
    ]


def test_w2s_ui_serves_the_newest_runs_experiment_in_the_training_view(workspace, tmp_path):
    assert served_experiment() is None
    c = store.client()
    # An experiment made before experiments carried their kind, holding a workbench run.
    old = c.create_experiment("old-w2s")
    c.create_run(old, tags={"w2s.config_hash": "abc", "mlflow.runName": "old"})
    foreign = c.create_experiment("someone-elses")
    c.create_run(foreign, tags={"mlflow.runName": "theirs"})
    run_id, _ = _record_experiment(tmp_path, load_config(SMALL), _experiment_metrics(0.8))
    newest = c.get_run(run_id).info.experiment_id
    assert served_experiment() == (newest, "w2s-tests")
    assert served_experiment("old-w2s") == (old, "old-w2s")
    assert c.get_experiment(old).tags[store.EXPERIMENT_KIND_TAG] == store.TRAINING_KIND
    assert store.EXPERIMENT_KIND_TAG not in c.get_experiment(foreign).tags
    with pytest.raises(LookupError, match="experiment 'nope' not found"):
        served_experiment("nope")
    assert experiment_url("http://127.0.0.1:5000", "3") == "http://127.0.0.1:5000/#/experiments/3/runs?workflowType=machine_learning"


# --- the page and the note, formatted on their own ---

def test_the_page_escapes_what_it_shows_and_embeds_its_figures():
    report = RunReport(
        kind="experiment", run_id="r1", name="<b>bold</b> & co", experiment="e", status="FINISHED", started="now",
        headline=[Table(["stage", "value"], [["<i>", "1.000"]], numeric_from=1), Markdown("| a |\n|---|\n| <x> |")],
        figures=[Figure("f.png", b"\x89PNG-bytes")], config="key: <value>",
    )
    page = render(report)
    assert "<b>bold</b>" not in page and "&lt;b&gt;bold&lt;/b&gt; &amp; co" in page
    assert '<td>&lt;i&gt;</td><td class="num">1.000</td>' in page and "<td>&lt;x&gt;</td>" in page
    assert '<img src="data:image/png;base64,iVBORy1ieXRlcw==" alt="f.png">' in page
    assert "<pre>key: &lt;value&gt;</pre>" in page and "<script" not in page and "http" not in page.split("</head>")[1]


def test_markdown_keeps_tables_and_drops_images_and_raw_html():
    out = markdown_html("**b** <script>x</script>\n\n| m | v |\n|---|---|\n| pgr | 0.5 ± 0.1 |\n\n![i](http://x/y.png)")
    assert "<strong>b</strong>" in out and "&lt;script&gt;" in out and "<td>0.5 ± 0.1</td>" in out
    assert "<img" not in out
    assert table_html(Table(["a"], [])) == "<table><thead><tr><th>a</th></tr></thead><tbody></tbody></table>"


def test_a_long_table_is_cut_in_the_note_and_its_figures_kept():
    table = "\n".join(["| a | b |", "|---|---|", *(f"| {i} | {'x' * 40} |" for i in range(400))])
    note = table_note("r" * 32, table, ["sweep.png"], "footer")
    assert len(note) <= MAX_NOTE and "cut here" in note and note.endswith("footer")
    assert "![sweep.png](get-artifact?path=sweep.png&run_uuid=" + "r" * 32 + ")" in note
    kept = [line for line in note.splitlines() if re.fullmatch(r"\| \d+ \| x+ \|", line)]
    assert 50 < len(kept) < 400
    nan_note = experiment_note("r", {"pgr": math.nan, "acc_weak": 0.5}, [])
    assert nan_note.startswith("**PGR nan** (accuracy), nan (AUROC) · test accuracy weak 0.500, ceiling nan")


def test_the_documented_report_commands_are_the_ones_the_page_tests_run():
    """docs/tracking.md's report commands: bench/report_screenshot.py's runs (which
    test_report_pages.py records), then the two forms of ``w2s report``."""
    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "bench"))
    bench = importlib.import_module("report_screenshot")
    doc = (root / "docs" / "tracking.md").read_text()
    block = re.search(r"<!-- report-demo -->\n```bash\n(.*?)```", doc, re.S).group(1)
    commands = [shlex.split(line)[1:] for line in block.splitlines()]
    assert commands == [*bench.MAKE.values(), ["report", "RUN_ID"], ["report", "RUN_ID", "--out", "FILE.html"]]
