"""Stage ``train_weak``: the weak model, trained on ground truth of ``weak_train``, on the weak view."""

from __future__ import annotations

from typing import TYPE_CHECKING

from models.metrics import accuracy
from tasks.data import load_split
from tasks.fitting import train_classifier
from tasks.manifest import Manifest
from tasks.stage import StageOutput, cached_stage

if TYPE_CHECKING:
    from flows.config import ModelConfig


@cached_stage
def train_weak(out: StageOutput, weak: ModelConfig, seed: int, sources: list[Manifest]) -> None:
    from models.labels import one_hot

    train, val, test = (load_split(sources, s) for s in ("weak_train", "val", "test"))
    k = train.n_classes
    probs = train_classifier(
        out, weak, seed, train.x_weak, one_hot(train.label, k), val.x_weak, one_hot(val.label, k), test.x_weak
    )
    out.facts["test_acc"] = accuracy(probs, test.label)
