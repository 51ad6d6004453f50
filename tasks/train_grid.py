"""Stages that fit one model per study cell, all cells at once (models.training.fit_many).

``train_grid_truth``: the weak model (weak view) or the ceiling (full view) on the ground
truth of ``weak_train``. ``train_grid_w2s``: a W2S student on the weak labels of
``w2s_train``, restricted to a subset of its points. Both save test probabilities
row-aligned with the test split; the weak model also its labels for ``w2s_train``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Literal

import numpy as np

from models.metrics import accuracy
from models.synthetic import OVERLAP
from tasks.data import load_array, load_grid_split, save_array
from tasks.fitting import fit_spec
from tasks.manifest import Manifest
from tasks.stage import StageOutput, cached_stage

if TYPE_CHECKING:
    from flows.config import ModelConfig


@cached_stage
def train_grid_truth(out: StageOutput, model: ModelConfig, view: Literal["weak", "full"], data: Manifest) -> None:
    from models.labels import one_hot
    from models.training import fit_many

    n_cells = int(data.facts["n_cells"])
    train, pool, test = (load_grid_split(data, s) for s in ("weak_train", "w2s_train", "test"))

    def features(split):
        return split.x_weak if view == "weak" else split.x

    # The weak model's pool rows ride along as evaluation rows: its labels of w2s_train.
    labelled = [test, pool] if view == "weak" else [test]
    x_eval = np.concatenate([features(s) for s in labelled])
    eval_ids = np.concatenate([s.cell for s in labelled])
    probs = fit_many(fit_spec(model), features(train), one_hot(train.label, 2), train.cell, x_eval, eval_ids, n_cells, seed=0)
    save_array(out.dir, "test_probs", probs[: len(test.label)])
    if view == "weak":
        save_array(out.dir, "pool_probs", probs[len(test.label) :])
    out.facts.update(view=view, n_cells=n_cells, test_acc=accuracy(probs[: len(test.label)], test.label))


@cached_stage
def train_grid_w2s(
    out: StageOutput,
    model: ModelConfig,
    weak_labels: Literal["hard", "soft"],
    subset: Literal["all", "true_overlap", "detected_overlap"],
    data: Manifest,
    weak: Manifest,
    detection: Manifest | None = None,
) -> None:
    from models.labels import hard_labels
    from models.training import fit_many

    n_cells = int(data.facts["n_cells"])
    pool, test = load_grid_split(data, "w2s_train"), load_grid_split(data, "test")
    targets = load_array(weak, "pool_probs")
    if weak_labels == "hard":
        targets = hard_labels(targets)
    if subset == "all":
        keep = np.ones(len(pool.label), dtype=bool)
    elif subset == "true_overlap":
        keep = pool.group == OVERLAP
    elif detection is None:
        raise ValueError("subset 'detected_overlap' needs a detection")
    else:
        keep = load_array(detection, "groups") == OVERLAP
    probs = fit_many(
        fit_spec(model), pool.x, targets, pool.cell, test.x, test.cell, n_cells, seed=0, keep=keep
    )
    save_array(out.dir, "test_probs", probs)
    trained_on = np.bincount(pool.cell[keep], minlength=n_cells)
    out.path("trained_on.json").write_text(json.dumps(trained_on.tolist()))
    out.facts.update(
        subset=subset, weak_labels=weak_labels, test_acc=accuracy(probs, test.label),
        cells_without_points=int(np.sum(trained_on == 0)),
    )
