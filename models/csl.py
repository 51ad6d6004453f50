"""Co-supervised learning (Liu & Alahi, 2024; docs/methods.md): specialised weak teachers.

Teachers come in levels of 1, 2, 4, … specialists, each trained on one contiguous block of
classes (or one data source). Level by level, the previous student picks for each point
the teacher whose block holds its predicted class (assignment), points whose target the
student finds implausible are dropped (teacher–student consistency), optionally also
those where the specialist contradicts its parent (local–global consistency), and a fresh
student is trained on the rest with the step count kept constant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from models.labels import hard_labels


def class_blocks(n_classes: int, n_teachers: int) -> list[np.ndarray]:
    """``n_teachers`` contiguous blocks of classes, as equal in size as possible."""
    if not 1 <= n_teachers <= n_classes:
        raise ValueError(f"csl: {n_teachers} teachers need between 1 and {n_classes} (the number of classes)")
    return list(np.array_split(np.arange(n_classes), n_teachers))


def teacher_of_class(blocks: list[np.ndarray], n_classes: int) -> np.ndarray:
    """For each class, the index of the block (teacher) that holds it."""
    owner = np.full(n_classes, -1, dtype=np.int64)
    for j, block in enumerate(blocks):
        owner[block] = j
    return owner


def assign_teachers(student_probs: np.ndarray, teacher_probs: np.ndarray, owner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """E-step: each point's target is the prediction of the teacher owning the student's class.

    ``student_probs`` is ``(n, k)``, ``teacher_probs`` ``(m, n, k)`` (every teacher on every
    point), ``owner`` maps a class to its teacher. Returns ``(targets (n, k), teacher (n,))``.
    """
    teacher = owner[student_probs.argmax(axis=1)]
    return teacher_probs[teacher, np.arange(len(teacher))], teacher


def consistency_share(student_probs: np.ndarray, targets: np.ndarray, top_k: int = 3) -> float:
    """``r``: the share of points whose target class is among the student's ``top_k`` classes."""
    k = min(top_k, student_probs.shape[1])
    top = np.argsort(-student_probs, axis=1, kind="stable")[:, :k]
    return float(np.mean((top == targets.argmax(axis=1)[:, None]).any(axis=1)))


def consistency_denoise(student_probs: np.ndarray, targets: np.ndarray, top_k: int = 3) -> tuple[np.ndarray, float]:
    """Teacher–student consistency: keep the ``r·N`` points with the lowest student
    cross-entropy on their target's argmax class (Liu & Alahi's ``get_student_rank``, for
    soft and hard targets alike). Returns the boolean keep mask and ``r``."""
    r = consistency_share(student_probs, targets, top_k)
    chosen = student_probs[np.arange(len(targets)), targets.argmax(axis=1)]
    loss = -np.log(np.clip(chosen.astype(np.float64), 1e-300, None))
    keep = np.zeros(len(loss), dtype=bool)
    keep[np.argsort(loss, kind="stable")[: int(round(r * len(loss)))]] = True
    return keep, r


def local_global_agreement(specialist_targets: np.ndarray, parent_targets: np.ndarray) -> np.ndarray:
    """Local–global consistency: where the specialist's class equals its parent teacher's."""
    return specialist_targets.argmax(axis=1) == parent_targets.argmax(axis=1)


def constant_step_epochs(epochs: int, n_full: int, n_kept: int, batch_size: int | None) -> int:
    """Epochs for a student on ``n_kept`` points so that it takes as many optimiser steps as
    ``epochs`` epochs on ``n_full`` points (full batch: one step per epoch either way)."""
    if not batch_size or n_kept == 0:
        return epochs
    steps = epochs * math.ceil(n_full / batch_size)
    return max(1, math.ceil(steps / math.ceil(n_kept / batch_size)))


@dataclass
class Level:
    """One level of teachers: ``probs`` ``(m, n, k)`` on the pool, ``val_probs`` on val, and
    ``owner`` mapping a class to its teacher (or ``None`` when teachers own sources)."""

    probs: np.ndarray
    val_probs: np.ndarray
    owner: np.ndarray | None = None
    pool_source: np.ndarray | None = None
    val_source: np.ndarray | None = None


@dataclass
class StudentFit:
    """What a student callback returns: its probabilities on the pool and on val."""

    pool_probs: np.ndarray
    val_probs: np.ndarray
    result: object = None


@dataclass
class LevelReport:
    teachers: int
    kept: int
    consistency: float
    local_global_rejected: int = 0
    epochs: int = 0


@dataclass
class CoSupervision:
    student: StudentFit
    levels: list[LevelReport] = field(default_factory=list)


def co_supervise(
    levels: list[Level],
    train_student: Callable[[np.ndarray, np.ndarray, np.ndarray, int], StudentFit],
    epochs: int,
    batch_size: int | None,
    top_k: int = 3,
    local_global: bool = False,
    hard: bool = False,
) -> CoSupervision:
    """Alternate assignment, denoising and a fresh student, level by level.

    ``levels[0]`` is the single generalist; its student learns from it on every point.
    ``train_student(keep, targets, val_targets, epochs)`` fits a fresh student on the pool
    rows ``keep`` (boolean) with ``targets`` (for the kept rows), selecting on
    ``val_targets``, and returns a :class:`StudentFit`. ``hard`` turns targets into one-hot.
    """
    n = levels[0].probs.shape[1]
    every = np.ones(n, dtype=bool)
    harden = hard_labels if hard else (lambda probs: probs)
    targets, val_targets = harden(levels[0].probs[0]), harden(levels[0].val_probs[0])
    student = train_student(every, targets, val_targets, epochs)
    reports = [LevelReport(teachers=1, kept=n, consistency=1.0, epochs=epochs)]
    for parent, level in zip(levels, levels[1:]):
        targets = harden(_assign(student.pool_probs, level.probs, level.owner, level.pool_source))
        val_targets = harden(_assign(student.val_probs, level.val_probs, level.owner, level.val_source))
        keep, r = consistency_denoise(student.pool_probs, targets, top_k)
        rejected = 0
        if local_global:
            agree = local_global_agreement(
                targets, _assign(student.pool_probs, parent.probs, parent.owner, parent.pool_source)
            )
            rejected = int((keep & ~agree).sum())
            keep &= agree
        level_epochs = constant_step_epochs(epochs, n, int(keep.sum()), batch_size)
        if keep.any():
            student = train_student(keep, targets[keep], val_targets, level_epochs)
        reports.append(
            LevelReport(
                teachers=level.probs.shape[0], kept=int(keep.sum()), consistency=r,
                local_global_rejected=rejected, epochs=level_epochs,
            )
        )
    return CoSupervision(student=student, levels=reports)


def _assign(student_probs: np.ndarray, teacher_probs: np.ndarray, owner: np.ndarray | None, source: np.ndarray | None) -> np.ndarray:
    if owner is not None:
        return assign_teachers(student_probs, teacher_probs, owner)[0]
    # Teachers own sources: a point's teacher is its source's.
    return teacher_probs[source, np.arange(len(source))]
