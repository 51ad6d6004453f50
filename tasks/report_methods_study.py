"""Stage ``report_methods_study``: the method-comparison table, its JSON and a figure."""

from __future__ import annotations

import math
from functools import partial

from models.study_summary import fmt, methods_rows
from tasks.grid_artifacts import StudyReport
from tasks.plots import pyplot, save
from tasks.stage import StageOutput, cached_stage


@cached_stage(StudyReport)
def report_methods_study(out: StageOutput, cells: list[dict], config: dict) -> None:
    """``cells``: one result per (setting, variant, seed); ``config``: the study's, recorded
    in the JSON so that every row can be rerun."""
    baseline, select_on = config["baseline"], config["select_on"]
    rows = methods_rows(cells, baseline)
    oracle = " (oracle)" if select_on == "oracle_val" else ""
    parts = [
        f"Test accuracy and PGR, mean ± 95% CI over seeds; checkpoints selected on {select_on}{oracle}. "
        f"Δ and the paired t-test compare the W2S accuracy with `{baseline}` seed by seed."
    ]
    for setting in dict.fromkeys(r["setting"] for r in rows):
        mine = [r for r in rows if r["setting"] == setting]
        head = mine[0]
        density = ", ".join(f"{name} {fmt(d, 'mean')}" for name, d in head.get("overlap_density", {}).items())
        parts.append(
            f"**{setting}** ({head['n_seeds']} seeds): weak {fmt(head, 'acc_weak')}, ceiling {fmt(head, 'acc_ceiling')}"
            + (f"; detected overlap density {density}" if density else "")
        )
        parts.append(_table(mine, baseline, oracle))
    StudyReport.write(
        out, "methods_study", "\n\n".join(parts), {"config": config, "rows": rows, "cells": cells},
        partial(_plot, rows, oracle=oracle), n_cells=len(cells), n_rows=len(rows),
    )


def _table(rows: list[dict], baseline: str, oracle: str) -> str:
    lines = [
        f"| variant | method | W2S accuracy | PGR | Δ vs {baseline} | wins / losses | paired p |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        paired = r.get(f"vs_{baseline}")
        if paired:
            delta = fmt({"d": paired["diff"], "d_ci": paired["diff_ci"]}, "d")
            record = f"{paired['wins']} / {paired['losses']}"
            p = "–" if math.isnan(paired["p_value"]) else f"{paired['p_value']:.3f}"
        else:
            delta, record, p = "(baseline)", "", ""
        lines.append(
            f"| {r['variant']}{oracle} | {r['method']} | {fmt(r, 'acc_w2s')} | {fmt(r, 'pgr')} | {delta} | {record} | {p} |"
        )
    return "\n".join(lines)


def _plot(rows: list[dict], path, oracle: str) -> None:
    plt = pyplot()
    settings = list(dict.fromkeys(r["setting"] for r in rows))
    fig, axes = plt.subplots(1, len(settings), figsize=(5.5 * len(settings), 4), squeeze=False)
    for ax, setting in zip(axes[0], settings):
        mine = [r for r in rows if r["setting"] == setting]
        y = range(len(mine))
        ax.errorbar([r["acc_w2s"] for r in mine], y, xerr=[r["acc_w2s_ci"] for r in mine], fmt="o", capsize=3)
        ax.axvline(mine[0]["acc_weak"], color="grey", ls=":", label="weak")
        ax.axvline(mine[0]["acc_ceiling"], color="black", ls="--", label="ceiling")
        ax.set_yticks(list(y), [r["variant"] + oracle for r in mine])
        ax.invert_yaxis()
        ax.set(xlabel="W2S test accuracy (mean ± 95% CI)", title=setting)
        ax.legend(fontsize=8, loc="lower right")
    save(fig, path)
