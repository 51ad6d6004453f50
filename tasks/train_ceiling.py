"""Stage ``train_ceiling``: the strong model on ground truth of ``weak_train`` (the PGR ceiling)."""

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
def train_ceiling(out: StageOutput, ceiling: ModelConfig, seed: int, sources: list[Manifest]) -> None:
    from models.training import one_hot

    train, val, test = (load_split(sources, s) for s in ("weak_train", "val", "test"))
    k = train.n_classes
    probs = train_classifier(out, ceiling, seed, train.x, one_hot(train.label, k), val.x, one_hot(val.label, k), test.x)
    out.facts["test_acc"] = accuracy(probs, test.label)
