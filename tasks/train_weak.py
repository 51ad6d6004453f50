"""Stage ``train_weak``: the weak model, trained on ground truth of ``weak_train``, on the weak view."""

from __future__ import annotations


from models.metrics import accuracy
from tasks.artifacts import SourceSplits, TrainedModel, splits_of
from tasks.fitting import train_classifier
from tasks.specs import ModelConfig
from tasks.stage import StageOutput, cached_stage


@cached_stage(TrainedModel)
def train_weak(out: StageOutput, weak: ModelConfig, seed: int, sources: list[SourceSplits]) -> None:
    from models.labels import one_hot

    train, val, test = (splits_of(sources, s) for s in ("weak_train", "val", "test"))
    k = train.n_classes
    probs = train_classifier(
        out, weak, seed, train.x_weak, one_hot(train.label, k), val.x_weak, one_hot(val.label, k), test.x_weak
    )
    TrainedModel.record(out, test_acc=accuracy(probs, test.label))
