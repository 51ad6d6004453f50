"""Stage ``evaluate``: accuracy, AUROC, PGR, per-group accuracy, agreement, and a plot."""

from __future__ import annotations

from functools import partial

from models.metrics import model_metrics, pgr_report, teacher_agreement
from tasks.artifacts import Evaluation, SourceSplits, Student, TrainedModel, splits_of
from tasks.stage import StageOutput, cached_stage


@cached_stage(Evaluation)
def evaluate(
    out: StageOutput, weak: TrainedModel, ceiling: TrainedModel, student: Student, sources: list[SourceSplits]
) -> None:
    test = splits_of(sources, "test")
    probs = {"weak": weak.test_probs, "ceiling": ceiling.test_probs, "w2s": student.test_probs}
    per_model = {name: model_metrics(p, test.label, test.group) for name, p in probs.items()}
    metrics = {f"{k}_{name}": v for name, m in per_model.items() for k, v in m.items()}
    metrics.update(pgr_report(per_model["weak"], per_model["ceiling"], per_model["w2s"]))
    metrics.update(teacher_agreement(probs["w2s"], probs["weak"], test.label))
    Evaluation.write(
        out, metrics, partial(_plot_by_group, per_model), n_test=len(test.label), select_on=student.info.select_on
    )


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
