"""Study tables: per-cell figures averaged over seeds with 95% CIs, and the claims they test.

Plain functions over arrays and lists of dicts, so that a table can be rebuilt or checked
from the JSON a study writes.
"""

from __future__ import annotations

import math

import numpy as np

from models.metrics import mean_ci

DETECTION_METRICS = (
    "overlap_precision", "overlap_recall", "overlap_f1", "hard_precision", "hard_recall", "hard_f1", "density",
)


def grid_rows(
    grid_of_cell: np.ndarray,
    labels: list[str],
    ratios: list[float],
    per_cell: dict[str, np.ndarray],
) -> list[dict]:
    """One row per grid point: ``name`` → mean and ``name_ci`` → CI half-width over its cells."""
    rows = []
    for g, (label, ratio) in enumerate(zip(labels, ratios)):
        in_g = grid_of_cell == g
        row = {"grid": g, "label": label, "ratio": ratio, "n_seeds": int(in_g.sum())}
        for name, values in per_cell.items():
            row[name], row[f"{name}_ci"] = mean_ci(values[in_g])
        rows.append(row)
    return rows


def fmt(row: dict, name: str, digits: int = 3) -> str:
    mean, ci = row.get(name, math.nan), row.get(f"{name}_ci", math.nan)
    if not math.isfinite(mean):
        return "–"
    return f"{mean:.{digits}f} ± {ci:.{digits}f}" if math.isfinite(ci) else f"{mean:.{digits}f}"


def markdown_table(rows: list[dict], columns: list[tuple[str, str]], first: tuple[str, str] = ("ratio", "overlap ratio")) -> str:
    """A Markdown table: ``first`` column raw, then ``(key, title)`` columns as mean ± CI."""
    head = [first[1]] + [title for _, title in columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        value = row[first[0]]
        cells = [f"{value:.3f}" if isinstance(value, float) else str(value)] + [fmt(row, key) for key, _ in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def overlap_study_checks(rows: list[dict], check: str, detector_f1: dict[str, float]) -> list[dict]:
    """The overlap-density claims (docs/research.md), each with what was measured.

    ``rows`` are the ratio sweep's rows in increasing ratio; ``detector_f1`` maps each
    detector to its mean overlap F1 on the detection-check cells, labelled ``check``
    (500/500/500 by default).
    """
    def at(pred):
        return [r for r in rows if pred(r["ratio"])]

    true, weak = "acc_w2s_true_overlap", "acc_weak"
    low, high = at(lambda q: q <= 0.05), at(lambda q: q >= 0.30)
    overtakes = next((r["ratio"] for r in rows if r[true] > r[weak]), math.nan)
    hard_first, hard_last = rows[0]["hard_w2s_true_overlap"], rows[-1]["hard_w2s_true_overlap"]
    all_hard = [r["hard_w2s_all"] for r in rows]
    checks = [
        ("w2s_true_overlap <= 0.65 at ratio <= 0.05", bool(low) and all(r[true] <= 0.65 for r in low),
         [round(r[true], 3) for r in low]),
        ("w2s_true_overlap >= 0.80 at ratio >= 0.30", bool(high) and all(r[true] >= 0.80 for r in high),
         [round(r[true], 3) for r in high]),
        ("w2s_true_overlap overtakes weak between ratio 0.08 and 0.15", 0.08 <= overtakes <= 0.15, overtakes),
        ("hard-only accuracy climbs from ~0.5 to >= 0.72", abs(hard_first - 0.5) <= 0.05 and hard_last >= 0.72,
         [round(hard_first, 3), round(hard_last, 3)]),
        ("w2s_all hard-only within 0.45-0.55 at every ratio", all(0.45 <= a <= 0.55 for a in all_hard),
         [round(min(all_hard), 3), round(max(all_hard), 3)]),
        (f"best detector overlap F1 >= 0.6 on {check}", max(detector_f1.values()) >= 0.6,
         {k: round(v, 3) for k, v in detector_f1.items()}),
    ]
    return [{"claim": claim, "passed": bool(ok), "measured": measured} for claim, ok, measured in checks]


def round_rows(per_seed: dict[str, np.ndarray]) -> list[dict]:
    """One row per round: each ``(seeds, rounds)`` array's mean and CI half-width over seeds."""
    n_rounds = next(iter(per_seed.values())).shape[1]
    rows = []
    for t in range(n_rounds):
        row = {"round": t + 1}
        for name, values in per_seed.items():
            row[name], row[f"{name}_ci"] = mean_ci(values[:, t])
        rows.append(row)
    return rows


def selection_study_checks(final: dict[str, dict], curves: dict[str, list[dict]], n_sources: int) -> list[dict]:
    """The source-selection claims: UCB1's regret is sublinear, it collects ≥ 90% of the
    oracle's overlap points, and its student is at least as accurate as uniform random's."""
    checks = []
    if "ucb1" in curves:
        ucb = curves["ucb1"]
        per_round = [r["regret"] / r["round"] for r in ucb]
        points = [per_round[n_sources - 1], per_round[len(ucb) // 2 - 1], per_round[-1]]
        checks.append(("ucb1 regret(t)/t falls (after the first pulls, at T/2, at T)",
                       points[0] > points[1] > points[2], [round(p, 3) for p in points]))
    if "ucb1" in final and "oracle" in final:
        share = final["ucb1"]["true_overlap"] / final["oracle"]["true_overlap"]
        checks.append(("ucb1 collects >= 90% of the oracle's overlap points by T", share >= 0.9, round(share, 3)))
    if "ucb1" in final and "random" in final:
        u, r = final["ucb1"], final["random"]
        checks.append(("ucb1 final W2S accuracy >= uniform random's (mean ± 95% CI)", u["acc"] >= r["acc"],
                       [fmt(u, "acc"), fmt(r, "acc")]))
    return [{"claim": claim, "passed": bool(ok), "measured": measured} for claim, ok, measured in checks]


def paired_comparison(values: np.ndarray, baseline: np.ndarray) -> dict:
    """``values`` against ``baseline`` on the same seeds: mean difference with its 95% CI,
    wins / losses / ties, and the two-sided paired t-test's p-value (``nan`` when it is
    undefined: fewer than two pairs, or all differences equal)."""
    from scipy.stats import ttest_rel

    v, b = np.asarray(values, dtype=np.float64), np.asarray(baseline, dtype=np.float64)
    if v.shape != b.shape:
        raise ValueError(f"paired comparison needs the same seeds on both sides, got {v.shape} and {b.shape}")
    diff = v - b
    mean, ci = mean_ci(diff)
    p = float(ttest_rel(v, b).pvalue) if len(diff) > 1 and np.ptp(diff) > 0 else math.nan
    return {"diff": mean, "diff_ci": ci, "wins": int((diff > 0).sum()), "losses": int((diff < 0).sum()),
            "ties": int((diff == 0).sum()), "p_value": p}


def methods_rows(cells: list[dict], baseline: str = "xent", metrics: tuple[str, ...] = ("acc_w2s", "pgr")) -> list[dict]:
    """One row per (setting, variant) from per-cell results (``setting``, ``variant``,
    ``seed`` and metric values): every metric as mean ± CI over seeds, and the paired
    comparison of the first metric with ``baseline`` of the same setting, seed by seed."""
    rows = []
    keys = list(dict.fromkeys((c["setting"], c["variant"]) for c in cells))
    for setting, variant in keys:
        mine = sorted((c for c in cells if (c["setting"], c["variant"]) == (setting, variant)), key=lambda c: c["seed"])
        row = {"setting": setting, "variant": variant, "method": mine[0]["method"], "n_seeds": len(mine),
               "seeds": [c["seed"] for c in mine]}
        for name in ("acc_weak", "acc_ceiling", *metrics):
            row[name], row[f"{name}_ci"] = mean_ci(np.array([c[name] for c in mine]))
        if "overlap_density" in mine[0]:  # per source; the same for every variant of a seed
            row["overlap_density"] = {
                source: dict(zip(("mean", "mean_ci"), mean_ci(np.array([c["overlap_density"][source] for c in mine]))))
                for source in mine[0]["overlap_density"]
            }
        base = {c["seed"]: c for c in cells if (c["setting"], c["variant"]) == (setting, baseline)}
        if variant != baseline and base:
            shared = [c for c in mine if c["seed"] in base]
            row["vs_" + baseline] = paired_comparison(
                np.array([c[metrics[0]] for c in shared]), np.array([base[c["seed"]][metrics[0]] for c in shared])
            )
        rows.append(row)
    return rows


def sweep_rows(cells: list[dict], axes: list[str], metrics: tuple[str, ...]) -> list[dict]:
    """One row per combination of the sweep's ``axes`` other than ``seed``: each metric's mean
    and 95% CI half-width over that combination's seeds, in the order cells first appear."""
    groups: dict[tuple, list[dict]] = {}
    keys = [a for a in axes if a != "seed"]
    for cell in cells:
        groups.setdefault(tuple(repr(cell["axes"][k]) for k in keys), []).append(cell)
    rows = []
    for members in groups.values():
        row = {"axes": {k: members[0]["axes"][k] for k in keys}, "n_seeds": len(members)}
        for name in metrics:
            row[name], row[f"{name}_ci"] = mean_ci(np.array([m[name] for m in members], dtype=np.float64))
        rows.append(row)
    return rows
