"""Compare experiment runs from the MLflow store: what differed between them, and what came out.

The MLflow UI can compare runs, but only by clicking, and it shows every one of a run's
~100 config params. Here a selection of runs (an experiment, tag filters such as a sweep's
name) becomes a table of just the params that differ across them, next to the headline
metrics, plus a bar chart of those metrics: the same answer from a terminal or a script.

Only experiment runs are compared: a stage's child run (tag ``w2s.stage``) is a part of
one, and a study's or sweep's parent run carries none of the headline metrics.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from models.metrics import HEADLINE_METRICS
from tasks import plots, tracking

MAX_CELL = 24  # characters of a param value in the table; a config list can run to hundreds
PAGE = 200  # runs per search request


@dataclass(frozen=True)
class Comparison:
    runs: list[dict]  # run_id, name, status, params (the varying ones), metrics, tags; oldest first
    varying: list[str]
    metrics: list[str]
    table: str
    plot: Path | None


def compare_runs(
    experiment: str | None = None,
    filters: dict[str, str] | None = None,
    metrics: Sequence[str] | None = None,
    out_dir: Path | None = None,
    limit: int = 200,
) -> Comparison:
    """The newest ``limit`` experiment runs of ``experiment`` (every experiment if None) whose
    tags equal ``filters``, compared on ``metrics`` (default: accuracies and PGR)."""
    c = tracking.client()
    filters = dict(filters or {})
    requested = list(metrics or HEADLINE_METRICS)
    where = f"experiment '{experiment}'" if experiment else "any experiment"
    where += "".join(f", {k}={v}" for k, v in filters.items())
    candidates = _search(c, _experiment_ids(c, experiment), filters, requested, limit)
    if not candidates:
        raise LookupError(f"no runs match {where}")
    available = sorted({m for r in candidates for m in r.data.metrics})
    unknown = [m for m in requested if m not in available]
    if metrics and unknown:
        raise LookupError(f"unknown metric {', '.join(unknown)} (metrics: {', '.join(available)})")
    wanted = [m for m in requested if m in available]  # a default no run logged is left out, not refused
    chosen = sorted(
        (r for r in candidates if any(m in r.data.metrics for m in wanted)),
        key=lambda r: (r.info.start_time, r.info.run_id),
    )[-limit:]
    if not chosen:
        raise LookupError(f"no runs match {where} with any of the metrics {', '.join(requested)}")

    keys = sorted({k for r in chosen for k in r.data.params})
    varying = [k for k in keys if len({r.data.params.get(k) for r in chosen}) > 1]
    runs = [
        {
            "run_id": r.info.run_id,
            "name": r.info.run_name or r.info.run_id[:8],
            "status": r.info.status,
            "params": {k: r.data.params.get(k) for k in varying},
            "metrics": {m: r.data.metrics[m] for m in wanted if m in r.data.metrics},
            "tags": dict(r.data.tags),
        }
        for r in chosen
    ]
    title = (experiment or "all experiments") + "".join(f"  {k}={v}" for k, v in filters.items())
    plot = _plot(runs, varying, wanted, title, Path(out_dir)) if out_dir is not None else None
    return Comparison(runs, varying, wanted, _table(runs, varying, wanted), plot)


def _experiment_ids(c, name: str | None) -> list[str]:
    if name is None:
        return [e.experiment_id for e in c.search_experiments()]
    found = c.get_experiment_by_name(name)
    if found is None:
        names = ", ".join(sorted(e.name for e in c.search_experiments())) or "none"
        raise LookupError(f"experiment '{name}' not found (experiments: {names})")
    return [found.experiment_id]


def _search(c, experiment_ids: list[str], filters: dict[str, str], wanted: list[str], limit: int) -> list:
    """Non-stage runs matching ``filters``, newest first, until ``limit`` of them carry a wanted
    metric: parents without metrics must not use up the limit."""
    clauses = ["tags.`w2s.stage` IS NULL"]
    for k, v in filters.items():
        # MLflow's parser unescapes nothing ('it''s' stays as typed), so a value is quoted with
        # the quote it lacks; what cannot be quoted at all is checked below only.
        quote = "'" if "'" not in v else '"' if '"' not in v else None
        if quote and "`" not in k:
            clauses.append(f"tags.`{k}` = {quote}{v}{quote}")
    found, token = [], None
    while True:
        page = c.search_runs(
            experiment_ids, " and ".join(clauses), max_results=PAGE,
            order_by=["attributes.start_time DESC"], page_token=token,
        )
        found += [r for r in page if all(r.data.tags.get(k) == v for k, v in filters.items())]
        token = page.token
        if not token or sum(any(m in r.data.metrics for m in wanted) for r in found) >= limit:
            return found


def _cell(value, width: int = MAX_CELL) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    text = str(value)
    if len(text) <= width:
        return text
    head = (width - 1) // 2  # two long config lists tend to differ at their ends: keep both
    return text[:head] + "…" + text[head + 1 - width :]


def _table(runs: list[dict], varying: list[str], metrics: list[str]) -> str:
    show_status = any(r["status"] != "FINISHED" for r in runs)
    header = ["run", "id", *(["status"] if show_status else []), *varying, *metrics]
    rows = [
        [_cell(r["name"], 32), r["run_id"][:8], *([r["status"]] if show_status else [])]
        + [_cell(r["params"][k]) for k in varying]
        + [_cell(r["metrics"].get(m)) for m in metrics]
        for r in runs
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    numeric = len(header) - len(metrics)  # metric columns are right-aligned so decimals line up

    def line(cells: list[str]) -> str:
        padded = (s.rjust(w) if i >= numeric else s.ljust(w) for i, (s, w) in enumerate(zip(cells, widths)))
        return "  ".join(padded).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)]) + "\n"


def _plot(runs: list[dict], varying: list[str], metrics: list[str], title: str, out_dir: Path) -> Path:
    plt = plots.pyplot()
    n, width = len(runs), 0.8 / len(metrics)
    fig, ax = plt.subplots(figsize=(min(4 + 1.2 * n, 40), 5.5))
    for j, m in enumerate(metrics):
        values = [r["metrics"].get(m, math.nan) for r in runs]
        ax.bar([i + (j - (len(metrics) - 1) / 2) * width for i in range(n)], values, width, label=m)
    # A label carries the run's name and at most three differing params, or it drowns the axis.
    labels = [
        "\n".join([r["name"], *(f"{k}={_cell(r['params'][k], 16)}" for k in varying[:3])]) for r in runs
    ]
    many = n > 6  # side by side, more labels than that would overlap: slant them
    slant = {"rotation": 40, "ha": "right", "rotation_mode": "anchor"} if many else {}
    ax.set_xticks(range(n), labels, fontsize=8, **slant)
    ax.axhline(0, color="black", lw=0.6)
    ax.set_title(f"Runs compared: {title}", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # beside the bars, never over them
    out_dir.mkdir(parents=True, exist_ok=True)
    target, tmp = out_dir / "compare.png", out_dir / ".compare.tmp.png"
    plots.save(fig, tmp)
    os.replace(tmp, target)  # a reader never sees a half-written figure
    return target
