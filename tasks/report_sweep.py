"""Stage ``report_sweep``: a sweep's table (mean ± 95% CI over seeds), its JSON and a figure."""

from __future__ import annotations

from functools import partial

from models.metrics import HEADLINE_METRICS
from models.study_summary import fmt, sweep_rows
from tasks.grid_artifacts import StudyReport
from tasks.plots import pyplot, save
from tasks.stage import StageOutput, cached_stage


@cached_stage(StudyReport)
def report_sweep(out: StageOutput, cells: list[dict], failed: list[dict], config: dict) -> None:
    """``cells``: the finished cells' axes and metrics; ``failed``: each failed cell and its
    error; ``config``: the sweep's, recorded so that every row can be rerun."""
    axes = list(config["grid"])
    rows = sweep_rows(cells, axes, HEADLINE_METRICS)
    keys = [a for a in axes if a != "seed"]
    head = [*keys, "seeds", "weak", "ceiling", "W2S", "PGR"]
    lines = [
        f"Sweep `{config['name']}`: {len(cells)} cells finished, {len(failed)} failed. "
        "Test accuracy and PGR, mean ± 95% CI over seeds.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for r in rows:
        values = [str(r["axes"][k]) for k in keys] + [str(r["n_seeds"])] + [fmt(r, m) for m in HEADLINE_METRICS]
        lines.append("| " + " | ".join(values) + " |")
    for f in failed:
        lines.append(f"\nFAILED {f['cell']}: {f['error']}")
    StudyReport.write(
        out, "sweep", "\n".join(lines), {"config": config, "rows": rows, "cells": cells, "failed": failed},
        partial(_plot, rows, keys) if rows else None, n_cells=len(cells), n_failed=len(failed), n_rows=len(rows),
    )


def _plot(rows: list[dict], keys: list[str], path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(rows) + 1.6))
    y = list(range(len(rows)))
    ax.errorbar([r["pgr"] for r in rows], y, xerr=[r["pgr_ci"] for r in rows], fmt="o", capsize=3)
    ax.axvline(0, color="grey", ls=":")
    ax.axvline(1, color="black", ls="--")
    ax.set_yticks(y, [", ".join(f"{k}={r['axes'][k]}" for k in keys) or "all" for r in rows])
    ax.invert_yaxis()
    ax.set(xlabel="PGR (mean ± 95% CI over seeds)", title="sweep")
    save(fig, path)
