"""Stage ``train_weak``: the weak model, trained on ground truth of ``weak_train``: a head on
the weak view (a hand-made view of the data, or a weak backbone's frozen features), or the
weak side's backbone itself, fine-tuned on the rows' raw text or pixels."""

from __future__ import annotations

from models.metrics import accuracy
from tasks.artifacts import SourceSplits, TrainedModel, splits_of
from tasks.finetuning import concat, finetune_and_save, raw_inputs
from tasks.fitting import train_classifier
from tasks.specs import BackboneConfig, ModelConfig
from tasks.stage import StageOutput, cached_stage


@cached_stage(TrainedModel)
def train_weak(
    out: StageOutput, weak: ModelConfig, seed: int, sources: list[SourceSplits], finetune: BackboneConfig | None = None
) -> None:
    """``finetune``: the weak backbone to fine-tune, instead of ``weak`` (a head) on the weak view."""
    from models.labels import one_hot

    train, val, test = (splits_of(sources, s) for s in ("weak_train", "val", "test"))
    k = train.n_classes
    targets, val_targets = one_hot(train.label, k), one_hot(val.label, k)
    if finetune is not None:
        raw = {s: concat(raw_inputs(sources, s)) for s in ("weak_train", "val", "test")}
        probs = finetune_and_save(out, finetune, seed, raw["weak_train"], targets, raw["val"], val_targets, raw["test"])
    else:
        probs = train_classifier(out, weak, seed, train.x_weak, targets, val.x_weak, val_targets, test.x_weak)
    TrainedModel.record(out, test_acc=accuracy(probs, test.label))
