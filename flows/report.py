"""``w2s report RUN_ID``: one experiment, sweep or study run as one self-contained HTML page.

Everything comes from the MLflow store, as flows/tracking.py recorded it: the parent run's
``config.yaml`` (or its params), headline metrics, figures, stage records (``stages.json``;
the ``w2s.cached.*`` tags of runs older than it) and provenance tags; a sweep's table is
computed from its cells' runs, with the sweep's own mean ± 95% CI (models/study_summary.py),
and a study's is the table it logged. The page is readable without MLflow, a server or a
network: figures are embedded, the style is inline, there is no script.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import yaml

from flows.report_html import Figure, Markdown, RunReport, Table, mime_of, render
from models.metrics import HEADLINE_METRICS
from models.study_summary import fmt, sweep_rows
from tasks import tracking
from tasks.workspace import home, mlflow_uri

HEADLINE_TITLES = {"acc_weak": "weak", "acc_ceiling": "ceiling", "acc_w2s": "W2S", "pgr": "PGR"}
CONFIG_FILE, STAGES_FILE = "config.yaml", "stages.json"
PAGE = 1000


class ReportError(LookupError):
    """A run that cannot be reported: one line for the user."""


def default_path(run_id: str) -> Path:
    return home() / "reports" / f"{run_id}.html"


def write_report(run_id: str, out: Path | None = None) -> Path:
    """Write the report of parent run ``run_id`` (or a unique prefix of it) to ``out``
    (default ``W2S_HOME/reports/<run id>.html``), whole or not at all; returns the path."""
    report = gather(run_id)
    target = Path(out) if out else default_path(report.run_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(render(report), encoding="utf-8")
    os.replace(tmp, target)
    return target


def gather(run_id: str) -> RunReport:
    c = _client()
    run = _find_run(c, run_id.strip())
    tags = run.data.tags
    if "w2s.stage" in tags:
        parent = tags.get("mlflow.parentRunId", "?")
        raise ReportError(f"run {run.info.run_id} is the stage '{tags['w2s.stage']}' of run {parent}: "
                          f"report that one (w2s report {parent})")
    kind = run_kind(tags, run.info.run_name or "")
    with tempfile.TemporaryDirectory(prefix="w2s-report-") as scratch:
        files = _Artifacts(c, run.info.run_id, Path(scratch))
        config_text = files.text(CONFIG_FILE)
        config = yaml.safe_load(config_text) if config_text else None
        report = RunReport(
            kind=kind, run_id=run.info.run_id, name=run.info.run_name or run.info.run_id,
            experiment=c.get_experiment(run.info.experiment_id).name, status=run.info.status,
            started=_when(run.info.start_time), headline=[],
            figures=[Figure(name, files.data(name), mime) for name, mime in files.figures()],
            stages=stage_table(json.loads(files.text(STAGES_FILE) or "null"), tags),
            config=config_text or params_text(run.data.params),
            config_source=f"{CONFIG_FILE}, as logged with the run" if config_text else "the run's params (no config.yaml logged)",
            footer=f"Written by w2s report on {_when(datetime.now(timezone.utc).timestamp() * 1000)} "
                   f"from the MLflow store {mlflow_uri()}.",
        )
        seeds = run.data.params.get("seed", "")
        if kind == "sweep":
            cells = _children(c, run, lambda r: "w2s.cell" in r.data.tags)
            logged = json.loads(files.text("sweep.json") or "{}")  # the sweep's record of why cells failed
            errors = {f["cell"]: f["error"] for f in logged.get("failed", [])}
            report.headline, report.sections, seeds = sweep_blocks(cells, grid_axes(config, cells), errors)
        elif kind == "study":
            tables = [files.text(name) for name in files.names() if name.endswith(".md")]
            # Its metrics are curves over the grid or the rounds (their last points alone would
            # mislead): the table the study wrote is its headline.
            report.headline = [Markdown(t) for t in tables if t] or [Markdown("This study logged no table.")]
            seeds = _study_seeds(run.data.params.get("seeds"))
        else:
            report.headline = experiment_headline(run.data.metrics, run.data.params)
            report.sections = [("All metrics", metrics_table(run.data.metrics))]
    report.provenance = provenance(run, report.experiment, seeds)
    return report


def run_kind(tags: dict, run_name: str) -> str:
    """``w2s.kind``, or for runs recorded before that tag, what their tags and name say."""
    if "w2s.kind" in tags:
        return tags["w2s.kind"]
    if "w2s.sweep" in tags and "w2s.cell" not in tags:
        return "sweep"
    return "study" if run_name.endswith("-study") else "experiment"


ACCURACY_ROWS = (("accuracy", "acc"), ("easy points", "acc_easy"), ("hard-only points", "acc_hard"),
                 ("overlap points", "acc_overlap"), ("AUROC", "auroc"))


def experiment_headline(metrics: dict, params: dict) -> list:
    """PGR, the method and how its checkpoint was chosen; weak, ceiling and W2S side by side
    on every group of test points the run measured; agreement with the weak teacher."""
    m = metrics
    select_on = params.get("strong.select_on", "")
    oracle = " (oracle: on ground truth)" if select_on == "oracle_val" else ""
    blocks = [Markdown(
        f"**PGR {_num(m.get('pgr'))}** (accuracy), {_num(m.get('pgr_auroc'))} (AUROC) · method "
        f"`{params.get('method', '?')}`" + (f" · checkpoints selected on {select_on}{oracle}" if select_on else "")
    )]
    rows = [[title, *(_num(m.get(f"{prefix}_{side}")) for side in ("weak", "ceiling", "w2s"))]
            for title, prefix in ACCURACY_ROWS if f"{prefix}_w2s" in m]
    blocks.append(Table(["test", "weak", "ceiling", "W2S"], rows, numeric_from=1))
    if "agreement" in m:
        blocks.append(Markdown(
            f"Student agrees with its weak teacher on {_num(m['agreement'])} of test points "
            f"(where the teacher is right {_num(m.get('agreement_teacher_right'))}, "
            f"wrong {_num(m.get('agreement_teacher_wrong'))})."
        ))
    return blocks


def metrics_table(metrics: dict) -> Table:
    return Table(["metric", "value"], [[k, _num(v)] for k, v in sorted(metrics.items())], numeric_from=1)


def grid_axes(config: dict | None, cells: list) -> list[str]:
    """The sweep's axes in its grid's order (from its config), else its cells' ``w2s.grid.*`` tags."""
    if config and isinstance(config.get("grid"), dict):
        return list(config["grid"])
    return sorted({k.removeprefix("w2s.grid.") for r in cells for k in r.data.tags if k.startswith("w2s.grid.")})


def sweep_blocks(cells: list, axes: list[str], errors: dict[str, str] | None = None) -> tuple[list, list, str]:
    """A sweep's headline (one row per combination of its axes but the seed: mean ± 95% CI over
    seeds, as the sweep's own table), the table of its cells (with the ``errors`` of failed
    ones), and the seeds they ran."""
    errors = errors or {}
    finished, failed = [], []
    for r in cells:
        m = r.data.metrics
        if r.info.status == "FINISHED" and all(k in m for k in HEADLINE_METRICS):
            axes_of = {k: r.data.tags.get(f"w2s.grid.{k}", "") for k in axes}
            finished.append({"axes": axes_of, **{k: m[k] for k in HEADLINE_METRICS}})
        else:
            failed.append(r)
    keys = [a for a in axes if a != "seed"]
    rows = sweep_rows(finished, axes, HEADLINE_METRICS)
    summary = Markdown(f"{len(finished)} cells finished, {len(failed)} failed. "
                       "Test accuracy and PGR, mean ± 95% CI over seeds.")
    table = Table(
        [*keys, "seeds", *(HEADLINE_TITLES[m] for m in HEADLINE_METRICS)],
        [[str(r["axes"][k]) for k in keys] + [str(r["n_seeds"])] + [fmt(r, m) for m in HEADLINE_METRICS] for r in rows],
        numeric_from=len(keys),
    )
    def label(r) -> str:
        return r.data.tags.get("w2s.cell", r.info.run_name or "")

    cell_table = Table(
        ["cell", "status", "run", *(HEADLINE_TITLES[m] for m in HEADLINE_METRICS)],
        [[label(r), r.info.status + (f": {errors[label(r)]}" if label(r) in errors else ""), r.info.run_id]
         + [_num(r.data.metrics.get(m)) for m in HEADLINE_METRICS] for r in cells],
        numeric_from=3,
    )
    seeds = sorted({r.data.params.get("seed", "") for r in cells} - {""}, key=lambda s: (len(s), s))
    return [summary, table], [("Cells", cell_table)], ", ".join(seeds)


def stage_table(records: dict | None, tags: dict) -> Table | None:
    """Each stage: cached or computed, seconds, and for a sweep or study how often it ran and
    was computed. Runs recorded before ``stages.json`` have only their cache tags."""
    if records:
        rows = [
            [name, "cached" if r["cached"] else "computed", f"{r['seconds']:.2f}", str(r["runs"]), str(r["computed"])]
            for name, r in records.items()
        ]
        return Table(["stage", "cache", "seconds", "runs", "computed"], rows, numeric_from=2)
    cached = {k.removeprefix("w2s.cached."): v for k, v in tags.items() if k.startswith("w2s.cached.")}
    if not cached:
        return None
    return Table(["stage", "cache"], [[k, "cached" if v == "true" else "computed"] for k, v in sorted(cached.items())])


def provenance(run, experiment: str, seeds: str) -> list[tuple[str, str]]:
    tags, info = run.data.tags, run.info
    items = [
        ("MLflow run", info.run_id),
        ("experiment", f"{experiment} (id {info.experiment_id})"),
        ("status", info.status),
        ("started", _when(info.start_time)),
        ("ended", _when(info.end_time) if info.end_time else "–"),
        ("duration", f"{(info.end_time - info.start_time) / 1000:.1f} s" if info.end_time else "–"),
        ("config hash", tags.get("w2s.config_hash", "–")),
        ("git commit", tags.get("w2s.git_commit", "–")),
        ("seeds", seeds or "–"),
        ("host", tags.get("w2s.host", "–")),
        ("process", tags.get("w2s.pid", "–")),
        ("Prefect flow run", tags.get("prefect.flow_run_id", "–")),
        ("MLflow store", mlflow_uri()),
        ("artifacts", info.artifact_uri),
    ]
    if "mlflow.parentRunId" in tags:
        of = (f"sweep {tags['w2s.sweep']}" if "w2s.sweep" in tags
              else f"{tags['w2s.study']} study" if "w2s.study" in tags else "run")
        items.insert(1, ("part of", f"{of} {tags['mlflow.parentRunId']}"))
    return items


def params_text(params: dict) -> str:
    return "\n".join(f"{k}: {v}" for k, v in sorted(params.items()))


def _study_seeds(count: str | None) -> str:
    if count and count.isdigit():
        return f"0 … {int(count) - 1} ({count} seeds)"
    return count or ""


def _num(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def _when(ms: float | None) -> str:
    if not ms:
        return "–"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _client():
    """The workspace's (or the team's) store; a workspace without one is refused, not created."""
    uri = mlflow_uri()
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise ReportError(f"no MLflow store at {uri.removeprefix('sqlite:///')}: no run has been recorded in {home()}")
    return tracking.client()


def _find_run(c, run_id: str):
    """The run with this id, or the one parent run whose id starts with it (the CLI prints 8 characters)."""
    from mlflow.exceptions import MlflowException

    if not re.fullmatch(r"[0-9a-fA-F]{1,32}", run_id):
        raise ReportError(f"{run_id!r} is not an MLflow run id (32 hexadecimal characters, or the start of one)")
    run_id = run_id.lower()
    experiments = [e.experiment_id for e in c.search_experiments()]
    if not experiments or not c.search_runs(experiments, max_results=1):
        raise ReportError(f"the MLflow store {mlflow_uri()} holds no runs")
    if len(run_id) == 32:
        try:
            return c.get_run(run_id)
        except MlflowException:
            raise ReportError(f"no run {run_id} in the MLflow store {mlflow_uri()}") from None
    found, token = [], None
    while True:
        page = c.search_runs(experiments, "tags.`w2s.stage` IS NULL", max_results=PAGE, page_token=token)
        found += [r for r in page if r.info.run_id.startswith(run_id)]
        token = page.token
        if not token:
            break
    if len(found) > 1:
        raise ReportError(f"run id {run_id!r} is ambiguous: {', '.join(r.info.run_id for r in found[:5])}")
    if not found:
        raise ReportError(f"no run whose id starts with {run_id!r} in the MLflow store {mlflow_uri()}")
    return found[0]


def _children(c, run, keep) -> list:
    """The runs nested directly in ``run`` that ``keep`` accepts, oldest first."""
    out, token = [], None
    while True:
        page = c.search_runs([run.info.experiment_id], f"tags.`mlflow.parentRunId` = '{run.info.run_id}'",
                             max_results=PAGE, page_token=token)
        out += [r for r in page if keep(r)]
        token = page.token
        if not token:
            return sorted(out, key=lambda r: (r.info.start_time, r.info.run_id))


class _Artifacts:
    """A run's artifacts, fetched through MLflow (a local folder or a server alike) when read."""

    def __init__(self, c, run_id: str, scratch: Path):
        self.c, self.run_id, self.scratch = c, run_id, scratch
        self._names = None

    def names(self) -> list[str]:
        if self._names is None:
            self._names, pending = [], [None]
            while pending:
                for a in self.c.list_artifacts(self.run_id, pending.pop()):
                    (pending if a.is_dir else self._names).append(a.path)
            self._names.sort()
        return self._names

    def figures(self) -> list[tuple[str, str]]:
        return [(n, mime_of(n)) for n in self.names() if mime_of(n)]

    def data(self, name: str) -> bytes:
        return Path(self.c.download_artifacts(self.run_id, name, str(self.scratch))).read_bytes()

    def text(self, name: str) -> str | None:
        return self.data(name).decode("utf-8") if name in self.names() else None
