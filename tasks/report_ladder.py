"""Stage ``report_ladder``: a model ladder's table (mean ± 95% CI over seeds), its PGR matrix
and test accuracy against model size (the shape of Burns et al.'s main figure)."""

from __future__ import annotations

from functools import partial

import numpy as np

from models.metrics import HEADLINE_METRICS
from models.study_summary import fmt, sweep_rows
from tasks.grid_artifacts import StudyReport
from tasks.plots import pyplot, save
from tasks.stage import StageOutput, cached_stage


# Below this gap between a pair's ceiling and its teacher (mean test accuracy), the table and
# the matrix show the gap instead of a PGR (the JSON keeps both).
MIN_GAP = 0.01


@cached_stage(StudyReport)
def report_ladder(out: StageOutput, cells: list[dict], config: dict) -> None:
    """``cells``: one result per (weak, strong, seed); ``config``: the ladder's, recorded in
    the JSON so that every row can be rerun."""
    from models.backbone import parameter_count

    models = list(config["models"])
    sizes = {m: parameter_count(m) for m in models}
    rows = sweep_rows([{**c, "axes": {"weak": c["weak"], "strong": c["strong"]}} for c in cells], ["weak", "strong"],
                      HEADLINE_METRICS)
    truth = _ground_truth(cells, models)
    lines = [
        f"Model ladder ({config['mode']}): {len(models)} models, {rows[0]['n_seeds'] if rows else 0} seed(s); "
        "test accuracy and PGR, mean ± 95% CI over seeds.",
        "",
        "| weak | strong | weak acc | ceiling acc | W2S acc | PGR |",
        "|---|---|---|---|---|---|",
        *(f"| {r['axes']['weak']} | {r['axes']['strong']} | " + " | ".join(_cell(r, m) for m in HEADLINE_METRICS) + " |"
          for r in rows),
        "",
        "Each model on ground truth (the ceiling of its size, the teacher of every larger one):",
        "",
        "| model | parameters | test acc |",
        "|---|---|---|",
        *(f"| {m} | {sizes[m]:,} | {fmt(truth[m], 'acc')} |" for m in models),
    ]
    StudyReport.write(
        out, "ladder", "\n".join(lines), {"config": config, "rows": rows, "ground_truth": truth, "parameters": sizes,
                                          "cells": cells},
        partial(_plot, models, rows, truth, sizes), n_cells=len(cells), n_rows=len(rows),
    )


def _cell(row: dict, metric: str) -> str:
    """A table cell; a pair whose ceiling is not above its teacher shows its gap, not a PGR
    (a ratio over a gap near zero or below it is noise, however large)."""
    gap = row["acc_ceiling"] - row["acc_weak"]
    if metric == "pgr" and gap < MIN_GAP:
        return f"no gap ({gap:+.3f})"
    return fmt(row, metric)


def _ground_truth(cells: list[dict], models: list[str]) -> dict[str, dict]:
    """Each model's own ground-truth test accuracy (mean ± CI over seeds): the same fit is the
    weak side of its pairs with larger models and the ceiling of those with smaller ones."""
    out = {}
    for m in models:
        per_seed = {c["seed"]: c["acc_weak"] for c in cells if c["weak"] == m}
        per_seed.update({c["seed"]: c["acc_ceiling"] for c in cells if c["strong"] == m})
        row = sweep_rows([{"axes": {}, "acc": v} for v in per_seed.values()], [], ("acc",))
        out[m] = row[0] if row else {}
    return out


def _plot(models: list[str], rows: list[dict], truth: dict[str, dict], sizes: dict[str, int], path) -> None:
    plt = pyplot()
    fig, (heat, curve) = plt.subplots(1, 2, figsize=(12, 4.6))
    index = {m: k for k, m in enumerate(models)}
    pgr = np.full((len(models), len(models)), np.nan)
    for r in rows:
        i, j = index[r["axes"]["weak"]], index[r["axes"]["strong"]]
        gap = r["acc_ceiling"] - r["acc_weak"]
        if gap < MIN_GAP:  # the stronger model is no better on ground truth: a PGR would be noise
            heat.text(j, i, f"no gap\n({gap:+.3f})", ha="center", va="center", fontsize=8)
        else:
            pgr[i, j] = r["pgr"]
            heat.text(j, i, f"{r['pgr']:.2f}", ha="center", va="center", color="white" if r["pgr"] < 0.5 else "black")
    finite = pgr[np.isfinite(pgr)]
    low, high = (min(0.0, finite.min()), max(1.0, finite.max())) if finite.size else (0.0, 1.0)
    shown = heat.imshow(pgr, cmap="viridis", vmin=low, vmax=high)
    heat.set(xticks=range(len(models)), yticks=range(len(models)), xlabel="strong student", ylabel="weak teacher",
             title="PGR (accuracy)")
    heat.set_xticklabels(models, rotation=30, ha="right")
    heat.set_yticklabels(models)
    fig.colorbar(shown, ax=heat, fraction=0.046)

    x = [sizes[m] for m in models]
    curve.plot(x, [truth[m].get("acc", np.nan) for m in models], "k--o", label="ground truth")
    for weak in models[:-1]:
        mine = [r for r in rows if r["axes"]["weak"] == weak]
        curve.plot([sizes[r["axes"]["strong"]] for r in mine], [r["acc_w2s"] for r in mine], "-o", label=f"teacher {weak}")
    curve.set(xscale="log", xlabel="strong model parameters", ylabel="test accuracy", title="accuracy against model size")
    curve.legend(fontsize=8)
    save(fig, path)
