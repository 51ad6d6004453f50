"""Stages that fit one model per study cell, all cells at once (models.training.fit_many).

``train_grid_truth``: the weak model (weak view) or the ceiling (full view) on the ground
truth of ``weak_train``. ``train_grid_w2s``: a W2S student on the weak labels of
``w2s_train``, restricted to a subset of its points. Both save test probabilities
row-aligned with the test split; the weak model also its labels for ``w2s_train``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from models.head import fit_spec
from models.metrics import accuracy
from models.synthetic import OVERLAP
from tasks.grid_artifacts import GridData, GridDetection, GridModel, GridStudent
from tasks.specs import ModelConfig
from tasks.stage import StageOutput, cached_stage


@cached_stage(GridModel)
def train_grid_truth(out: StageOutput, model: ModelConfig, view: Literal["weak", "full"], data: GridData) -> None:
    from models.labels import one_hot
    from models.training import fit_many

    n_cells = data.info.n_cells
    train, pool, test = (data.split(s) for s in ("weak_train", "w2s_train", "test"))

    def features(split):
        return split.x_weak if view == "weak" else split.x

    # The weak model's pool rows ride along as evaluation rows: its labels of w2s_train.
    labelled = [test, pool] if view == "weak" else [test]
    x_eval = np.concatenate([features(s) for s in labelled])
    eval_ids = np.concatenate([s.cell for s in labelled])
    probs = fit_many(fit_spec(model), features(train), one_hot(train.label, 2), train.cell, x_eval, eval_ids, n_cells, seed=0)
    test_probs = probs[: len(test.label)]
    GridModel.write(
        out, test_probs, probs[len(test.label):] if view == "weak" else None,
        view=view, n_cells=n_cells, test_acc=accuracy(test_probs, test.label),
    )


@cached_stage(GridStudent)
def train_grid_w2s(
    out: StageOutput,
    model: ModelConfig,
    weak_labels: Literal["hard", "soft"],
    subset: Literal["all", "true_overlap", "detected_overlap"],
    data: GridData,
    weak: GridModel,
    detection: GridDetection | None = None,
) -> None:
    from models.labels import hard_labels
    from models.training import fit_many

    n_cells = data.info.n_cells
    pool, test = data.split("w2s_train"), data.split("test")
    targets = weak.pool_probs
    if weak_labels == "hard":
        targets = hard_labels(targets)
    if subset == "all":
        keep = np.ones(len(pool.label), dtype=bool)
    elif subset == "true_overlap":
        keep = pool.group == OVERLAP
    elif detection is None:
        raise ValueError("subset 'detected_overlap' needs a detection")
    else:
        keep = detection.groups == OVERLAP
    probs = fit_many(
        fit_spec(model), pool.x, targets, pool.cell, test.x, test.cell, n_cells, seed=0, keep=keep
    )
    trained_on = np.bincount(pool.cell[keep], minlength=n_cells)
    GridStudent.write(out, probs, trained_on, subset=subset, weak_labels=weak_labels, test_acc=accuracy(probs, test.label))
