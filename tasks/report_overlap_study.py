"""Stage ``report_overlap_study``: the table, the claims it tests, and the plot."""

from __future__ import annotations

from functools import partial

import numpy as np

from models.metrics import accuracy_by_cell
from models.study_summary import DETECTION_METRICS, grid_rows, markdown_table, overlap_study_checks
from models.synthetic import HARD
from tasks.grid_artifacts import GridData, GridDetection, GridModel, GridStudent, StudyReport
from tasks.plots import band, pyplot, save
from tasks.stage import StageOutput, cached_stage


@cached_stage(StudyReport)
def report_overlap_study(
    out: StageOutput,
    grid: list[dict],
    data: GridData,
    models: dict[str, GridModel | GridStudent],
    detections: dict[str, GridDetection],
) -> None:
    """``grid`` gives each grid point's ``label`` and overlap ``ratio``; the last is the detection check."""
    test = data.split("test")
    cells = data.cells
    n_cells, grid_of = len(cells), np.array([c["grid"] for c in cells])
    per_cell = {}
    for name, m in models.items():
        probs = m.test_probs
        per_cell[f"acc_{name}"] = accuracy_by_cell(probs, test.label, test.cell, n_cells)
        per_cell[f"hard_{name}"] = accuracy_by_cell(probs, test.label, test.cell, n_cells, where=test.group == HARD)
    for name, m in detections.items():
        scores = m.per_cell
        for metric in DETECTION_METRICS:
            per_cell[f"{name}_{metric}"] = np.array([c[metric] for c in scores])
    rows = grid_rows(grid_of, [g["label"] for g in grid], [g["ratio"] for g in grid], per_cell)
    sweep, check = rows[:-1], rows[-1]
    checks = overlap_study_checks(sweep, check["label"], {d: check[f"{d}_overlap_f1"] for d in detections})

    variants = [k.removeprefix("acc_") for k in per_cell if k.startswith("acc_")]
    accuracy_columns = [(f"acc_{v}", v) for v in variants] + [(f"hard_{v}", f"{v} (hard-only)") for v in variants]
    detection_columns = [
        (f"{d}_{m}", f"{d} {m}") for d in detections for m in ("overlap_f1", "hard_f1", "density")
    ]
    table = "\n\n".join(
        [
            "Test accuracy, mean ± 95% CI over seeds",
            markdown_table(rows, accuracy_columns, ("label", "overlap ratio")),
            "Detection against the true groups (density: estimated; the true one is the ratio)",
            markdown_table(rows, detection_columns, ("label", "overlap ratio")),
            "Claims",
            "\n".join(f"- [{'x' if c['passed'] else ' '}] {c['claim']}: {c['measured']}" for c in checks),
        ]
    )
    StudyReport.write(
        out, "overlap_study", table, {"rows": rows, "checks": checks}, partial(_plot, sweep, variants, list(detections)),
        checks_passed=sum(c["passed"] for c in checks),
        checks_total=len(checks),
        check_overlap_f1={d: check[f"{d}_overlap_f1"] for d in detections},
    )


def _plot(rows: list[dict], variants: list[str], detectors: list[str], path) -> None:
    plt = pyplot()
    x = [r["ratio"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for ax, prefix, title in ((axes[0], "acc", "test accuracy"), (axes[1], "hard", "accuracy on hard-only points")):
        for v in variants:
            band(ax, x, rows, f"{prefix}_{v}", v, ls="--" if v in ("weak", "ceiling") else "-")
        ax.axhline(0.5, color="grey", lw=0.8, ls=":")
        ax.set(xlabel="overlap ratio", ylabel=title, ylim=(0.4, 0.95))
    axes[0].legend(fontsize=8)
    for d in detectors:
        band(axes[2], x, rows, f"{d}_overlap_f1", f"{d}: overlap F1")
        band(axes[2], x, rows, f"{d}_density", f"{d}: estimated density", ls=":")
    axes[2].plot(x, x, color="black", lw=0.8, label="true density")
    axes[2].set(xlabel="overlap ratio", ylabel="F1 / density", ylim=(0, 1))
    axes[2].legend(fontsize=8)
    save(fig, path)
