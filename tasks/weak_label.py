"""Stage ``weak_label``: the weak model's soft labels for every source's pool and for ``val``
(a head reads the weak view; a fine-tuned weak backbone the rows' raw text or pixels)."""

from __future__ import annotations

from tasks.artifacts import SourceSplits, TrainedModel, WeakLabels, splits_of
from tasks.finetuning import concat, finetuned_probs, raw_inputs
from tasks.stage import StageOutput, cached_stage


@cached_stage(WeakLabels)
def weak_label(out: StageOutput, weak: TrainedModel, sources: list[SourceSplits]) -> None:
    if weak.info.finetuned:
        *pools, val = finetuned_probs(weak, *raw_inputs(sources, "w2s_train"), concat(raw_inputs(sources, "val")))
        WeakLabels.write(out, pools, val)
        return
    from models.training import load_classifier, predict_probs

    net = load_classifier(weak.model_dir)
    pools = [predict_probs(net, source.split("w2s_train").x_weak) for source in sources]
    WeakLabels.write(out, pools, predict_probs(net, splits_of(sources, "val").x_weak))
