"""Stage ``train_teachers``: one level of ``csl``'s specialised weak teachers.

Each specialist is the weak model trained on the ground truth of one block of classes (or
one source) of ``weak_train``; it still predicts every class. Its soft labels of every
source's pool and of ``val`` are saved for the student's assignment step.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from models.csl import class_blocks
from models.metrics import accuracy
from models.head import fit_spec
from tasks.artifacts import SourceSplits, TeacherLabels, splits_of
from tasks.specs import ModelConfig
from tasks.stage import StageOutput, cached_stage


@cached_stage(TeacherLabels)
def train_teachers(
    out: StageOutput, weak: ModelConfig, n_teachers: int, by: Literal["classes", "sources"], seed: int,
    sources: list[SourceSplits],
) -> None:
    from models.labels import one_hot
    from models.training import fit_classifier, predict_probs

    train, val, test = (splits_of(sources, s) for s in ("weak_train", "val", "test"))
    k = train.n_classes
    if by == "classes":
        blocks = class_blocks(k, n_teachers)
        member = lambda split, j: np.isin(split.label, blocks[j])  # noqa: E731
    else:
        if n_teachers != len(sources):
            raise ValueError(f"csl by sources: {n_teachers} teachers for {len(sources)} sources")
        member = lambda split, j: split.source == j  # noqa: E731
    pools = [s.split("w2s_train").x_weak for s in sources]
    pool_probs = [np.empty((n_teachers, len(p), k), np.float32) for p in pools]
    val_probs = np.empty((n_teachers, len(val.label), k), np.float32)
    accuracies = []
    for j in range(n_teachers):
        rows, val_rows, test_rows = member(train, j), member(val, j), member(test, j)
        if not rows.any():
            raise ValueError(f"csl: teacher {j} of {n_teachers} has no weak_train points in its block")
        fit = fit_classifier(
            fit_spec(weak), train.x_weak[rows], one_hot(train.label[rows], k),
            val.x_weak[val_rows], one_hot(val.label[val_rows], k), seed + j,
        )
        for i, pool in enumerate(pools):
            pool_probs[i][j] = predict_probs(fit.net, pool)
        val_probs[j] = predict_probs(fit.net, val.x_weak)
        accuracies.append(accuracy(predict_probs(fit.net, test.x_weak[test_rows]), test.label[test_rows]))
    # Each specialist's test accuracy on its own block (or source): reported, never used.
    TeacherLabels.write(
        out, pool_probs, val_probs, n_teachers=n_teachers, by=by, test_acc_in_block=accuracies,
        mean_test_acc_in_block=float(np.mean(accuracies)), blocks=[b.tolist() for b in blocks] if by == "classes" else None,
    )
