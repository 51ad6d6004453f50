"""Stage ``train_strong``: the W2S student on the bought points and their weak labels."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from models.metrics import accuracy
from models.synthetic import OVERLAP
from tasks.data import load_array, load_split
from tasks.fitting import train_classifier
from tasks.manifest import Manifest
from tasks.stage import StageOutput, cached_stage

if TYPE_CHECKING:
    from flows.config import StrongConfig


@cached_stage
def train_strong(
    out: StageOutput,
    strong: StrongConfig,
    seed: int,
    selection: Manifest,
    labels: Manifest,
    sources: list[Manifest],
) -> None:
    from models.training import one_hot

    xs, targets = [], []
    for i, source in enumerate(sources):
        taken = load_array(selection, f"taken_{i}")
        if strong.method == "overlap_only":
            taken = taken[load_array(selection, f"groups_{i}") == OVERLAP]
        xs.append(load_split([source], "w2s_train").x[taken])
        targets.append(load_array(labels, f"pool_probs_{i}")[taken])
    x, weak_probs = np.concatenate(xs), np.concatenate(targets)
    if len(x) == 0:
        raise ValueError(f"method '{strong.method}' left no training points (no overlap was detected)")
    val, test = load_split(sources, "val"), load_split(sources, "test")
    # weak_val never looks at ground truth; oracle_val does, and every report says so.
    val_targets = load_array(labels, "val_probs") if strong.select_on == "weak_val" else one_hot(val.label, val.n_classes)
    probs = train_classifier(out, strong, seed, x, weak_probs, val.x, val_targets, test.x)
    out.facts.update(method=strong.method, select_on=strong.select_on, test_acc=accuracy(probs, test.label))
