"""Stage ``weak_label``: the weak model's soft labels for every source's pool and for ``val``."""

from __future__ import annotations

from tasks.artifacts import SourceSplits, TrainedModel, WeakLabels, splits_of
from tasks.stage import StageOutput, cached_stage


@cached_stage(WeakLabels)
def weak_label(out: StageOutput, weak: TrainedModel, sources: list[SourceSplits]) -> None:
    from models.training import load_classifier, predict_probs

    net = load_classifier(weak.model_dir)
    pools = [predict_probs(net, source.split("w2s_train").x_weak) for source in sources]
    WeakLabels.write(out, pools, predict_probs(net, splits_of(sources, "val").x_weak))
