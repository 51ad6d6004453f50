"""Stage ``report_selection_study``: per-round curves and the final table of every policy."""

from __future__ import annotations

from functools import partial

import numpy as np

from models.study_summary import markdown_table, round_rows, selection_study_checks
from tasks.grid_artifacts import GridData, GridSelection, RoundStudents, StudyReport
from tasks.plots import band, pyplot, save
from tasks.stage import StageOutput, cached_stage


@cached_stage(StudyReport)
def report_selection_study(
    out: StageOutput, data: GridData, selections: dict[str, GridSelection], students: dict[str, RoundStudents]
) -> None:
    cells = data.cells
    true_density = cells[0]["true_density"]
    curves, final = {}, {}
    for policy, sel in selections.items():
        estimates = sel.series("estimates")  # (seeds, rounds, sources)
        per_seed = {
            "regret": sel.series("regret"),
            "true_overlap": sel.series("true_overlap").astype(float),
            "acc": students[policy].test_acc,
            **{f"estimate_{k}": estimates[:, :, k] for k in range(estimates.shape[2])},
        }
        curves[policy] = round_rows(per_seed)
        pulls = np.bincount(sel.series("arms").ravel(), minlength=len(true_density))
        final[policy] = {"policy": policy, **curves[policy][-1], "pull_share": (pulls / pulls.sum()).round(3).tolist()}
    checks = selection_study_checks(final, curves, len(true_density))
    columns = [("regret", "cumulative regret (overlap points)"), ("true_overlap", "overlap points collected"),
               ("acc", "W2S test accuracy")]
    columns += [(f"estimate_{k}", f"estimated density of source {k} (true {d:.2f})") for k, d in enumerate(true_density)]
    rows = list(final.values())
    table = "\n\n".join(
        [
            f"After the last round, mean ± 95% CI over {len(cells)} seeds",
            markdown_table(rows, columns, ("policy", "policy")),
            "Share of pulls per source: " + "; ".join(f"{r['policy']} {r['pull_share']}" for r in rows),
            "Claims",
            "\n".join(f"- [{'x' if c['passed'] else ' '}] {c['claim']}: {c['measured']}" for c in checks),
        ]
    )
    StudyReport.write(
        out, "selection_study", table, {"final": final, "curves": curves, "checks": checks},
        partial(_plot, curves, true_density), checks_passed=sum(c["passed"] for c in checks), checks_total=len(checks),
    )


def _plot(curves: dict[str, list[dict]], true_density: list[float], path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for policy, rows in curves.items():
        x = [r["round"] for r in rows]
        band(axes[0], x, rows, "regret", policy)
        band(axes[1], x, rows, "acc", policy)
    axes[0].set(xlabel="round", ylabel="cumulative regret (overlap points)")
    axes[1].set(xlabel="round", ylabel="W2S test accuracy")
    axes[0].legend(fontsize=8)
    shown = "ucb1" if "ucb1" in curves else next(iter(curves))
    rows = curves[shown]
    x = [r["round"] for r in rows]
    for k, d in enumerate(true_density):
        band(axes[2], x, rows, f"estimate_{k}", f"source {k}")
        axes[2].axhline(d, color=axes[2].lines[-1].get_color(), ls="--", lw=0.8)
    axes[2].set(xlabel="round", ylabel=f"{shown}: estimated density (dashed: true)", ylim=(0, 1))
    axes[2].legend(fontsize=8)
    save(fig, path)
