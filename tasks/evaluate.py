"""Stage ``evaluate``: accuracy, AUROC, PGR, per-group accuracy, agreement, and a plot."""

from __future__ import annotations

import json

from models.metrics import model_metrics, pgr_report, teacher_agreement
from tasks.data import load_array, load_split
from tasks.manifest import Manifest
from tasks.stage import StageOutput, cached_stage

PLOT = "accuracy_by_group.png"


@cached_stage
def evaluate(out: StageOutput, weak: Manifest, ceiling: Manifest, student: Manifest, sources: list[Manifest]) -> None:
    test = load_split(sources, "test")
    probs = {name: load_array(m, "test_probs") for name, m in (("weak", weak), ("ceiling", ceiling), ("w2s", student))}
    per_model = {name: model_metrics(p, test.label, test.group) for name, p in probs.items()}
    metrics = {f"{k}_{name}": v for name, m in per_model.items() for k, v in m.items()}
    metrics.update(pgr_report(per_model["weak"], per_model["ceiling"], per_model["w2s"]))
    metrics.update(teacher_agreement(probs["w2s"], probs["weak"], test.label))
    out.facts.update(metrics=metrics, n_test=len(test.label), select_on=student.facts.get("select_on"))
    out.path("metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
    _plot_by_group(per_model, out.path(PLOT))
    out.plots.append(PLOT)


def _plot_by_group(per_model: dict[str, dict], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = ["acc"] + [k for k in ("acc_easy", "acc_hard", "acc_overlap") if k in per_model["weak"]]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    width = 0.8 / len(per_model)
    for i, (name, m) in enumerate(per_model.items()):
        ax.bar([c + i * width for c in range(len(columns))], [m[c] for c in columns], width, label=name)
    ax.set_xticks([c + width * (len(per_model) - 1) / 2 for c in range(len(columns))])
    ax.set_xticklabels(["all"] + [c.removeprefix("acc_") for c in columns[1:]])
    ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax.set_ylim(0, 1)
    ax.set_ylabel("test accuracy")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
