"""Strong-training methods: how a W2S student learns from its weak supervision.

One entry per method, all with the same inputs (the bought points' strong features, the
weak soft labels, validation targets) and the same output (a fitted student):

- ``xent``: cross-entropy on the weak soft labels;
- ``xent_hard``: on their argmax;
- ``aux_conf``: Burns et al.'s auxiliary confidence loss;
- ``adapt_conf``: Guo et al.'s adaptive confidence distillation;
- ``product``: Burns et al.'s product loss (their code's ``product_loss_fn``);
- ``probe_filter``: EleutherAI's probe filtering of the weak labels, then ``xent``
  (models/probe_filter.py);
- ``overlap_only``: Shin et al., the points detected as overlap only (the caller subsets);
- ``bootstrap``: weak → intermediate → strong, each link on its own half of the points;
- ``csl``: Liu & Alahi's co-supervision by specialised teachers (models/csl.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from models.csl import Level, StudentFit, co_supervise
from models.labels import hard_labels
from models.losses import (
    adaptive_confidence_loss, adaptive_confidence_targets, aux_conf_alpha, aux_conf_targets, aux_confidence_loss,
    product_targets, soft_cross_entropy,
)
from models.probe_filter import ProbeFilter
from models.training import FitResult, FitSpec, fit_classifier, predict_probs


# A loss whose targets depend on the student itself (its hardened or own predictions, a
# per-point weight) treats them as constants: no gradient flows through them. Such a loss
# splits into ``step_targets`` (the constants, from the logits at the start of an optimiser
# step) and ``with_targets`` (the differentiable part); the trainer computes the constants
# once per step (models.classifier.SoftLabelClassifier). L-BFGS evaluates the loss many
# times per step: recomputing the targets at each trial point would make its line search
# minimise the self-referential objective itself, whose minimum is a student confident in
# one class everywhere (docs/methods.md, "Targets are constants of a step").


@dataclass(frozen=True)
class AuxConfLoss:
    alpha_max: float = 0.75
    warmup: float = 0.2

    def step_targets(self, logits, target, weights, step, total_steps):
        return aux_conf_targets(logits, target, weights)

    def with_targets(self, logits, target, weights, step, total_steps, frozen):
        alpha = aux_conf_alpha(step, total_steps, self.alpha_max, self.warmup)
        return aux_confidence_loss(logits, target, alpha, weights, own=frozen)

    def __call__(self, logits, target, weights, step, total_steps):
        frozen = self.step_targets(logits.detach(), target, weights, step, total_steps)
        return self.with_targets(logits, target, weights, step, total_steps, frozen)

    def schedule_end(self, total_steps: int) -> int:
        """The first step at which ``alpha`` has reached ``alpha_max``."""
        return math.ceil(self.warmup * total_steps)


@dataclass(frozen=True)
class AdaptConfLoss:
    T: float = 1.0
    tau: float = 0.5
    beta_ramp: float = 0.25

    @staticmethod
    def teacher_logits(target):
        # The weak model's log-probabilities are its logits up to a constant, which softmax ignores.
        return torch.log(target.clamp_min(1e-6))

    def step_targets(self, logits, target, weights, step, total_steps):
        return adaptive_confidence_targets(logits, self.teacher_logits(target), self.tau)

    def with_targets(self, logits, target, weights, step, total_steps, frozen):
        ramp = self.beta_ramp * total_steps
        scale = min(1.0, step / ramp) if ramp > 0 else 1.0
        return adaptive_confidence_loss(logits, self.teacher_logits(target), self.T, self.tau, scale, weights, frozen)

    def __call__(self, logits, target, weights, step, total_steps):
        frozen = self.step_targets(logits.detach(), target, weights, step, total_steps)
        return self.with_targets(logits, target, weights, step, total_steps, frozen)

    def schedule_end(self, total_steps: int) -> int:
        """The first step at which ``beta`` is no longer scaled down."""
        return math.ceil(self.beta_ramp * total_steps)


@dataclass(frozen=True)
class ProductLoss:
    """Burns et al.'s ``product_loss_fn``: cross-entropy against ``softmax^beta · weak^alpha``,
    renormalised, no gradient through the target. Their ``warmup_frac`` (0.1) is stored but
    never used by their loss, so there is no warm-up here either."""

    alpha: float = 1.0
    beta: float = 1.0

    def step_targets(self, logits, target, weights, step, total_steps):
        return product_targets(logits, target, self.alpha, self.beta)

    def with_targets(self, logits, target, weights, step, total_steps, frozen):
        return soft_cross_entropy(logits, frozen, weights)

    def __call__(self, logits, target, weights, step, total_steps):
        frozen = self.step_targets(logits.detach(), target, weights, step, total_steps)
        return self.with_targets(logits, target, weights, step, total_steps, frozen)


@dataclass
class StudentData:
    """The student's training points and what supervises it.

    ``val_targets`` is what checkpoints are selected on: the supervisor's labels of val
    (``weak_val``), or ground truth (``oracle_val``, flagged by ``oracle``).
    """

    x: np.ndarray
    weak_probs: np.ndarray
    x_val: np.ndarray
    val_targets: np.ndarray
    oracle: bool = False


def train_student(
    method: str, params: dict[str, Any], spec: FitSpec, data: StudentData, seed: int,
    levels: list[Level] | None = None, intermediate: FitSpec | None = None,
) -> tuple[FitResult, dict[str, Any]]:
    """Fit the W2S student with ``method``; returns the fit and facts worth recording."""
    if method in LOSS_METHODS:
        targets, val_targets = student_targets(method, params, data)
        return fit_classifier(spec, data.x, targets, data.x_val, val_targets, seed, loss_fn=student_loss(method, params)), {}
    if method == "bootstrap":
        return _bootstrap(spec, intermediate, data, seed)
    if method == "csl":
        return _co_supervised(spec, params, data, seed, levels)
    if method == "probe_filter":
        return _probe_filtered(spec, params, data, seed)
    raise ValueError(f"unknown method {method!r}")


# Methods that differ from plain cross-entropy only in their targets or loss (overlap_only in
# its points, which the caller picks): any model that trains on a loss can learn by them.
LOSS_METHODS = ("xent", "xent_hard", "aux_conf", "adapt_conf", "product", "overlap_only")


def student_targets(method: str, params: dict[str, Any], data: StudentData) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation targets of a loss method: the weak soft labels, or for
    ``xent_hard`` their argmax (ground-truth val stays as it is)."""
    if method == "xent_hard":
        return hard_labels(data.weak_probs), data.val_targets if data.oracle else hard_labels(data.val_targets)
    return data.weak_probs, data.val_targets


def student_loss(method: str, params: dict[str, Any]):
    """The loss of a loss method; None is plain soft cross-entropy."""
    if method == "aux_conf":
        return AuxConfLoss(**params)
    if method == "adapt_conf":
        return AdaptConfLoss(**params)
    if method == "product":
        return ProductLoss(**params)
    return None


def _bootstrap(spec: FitSpec, intermediate: FitSpec, data: StudentData, seed: int) -> tuple[FitResult, dict]:
    """The intermediate learns from the weak labels of one half of the points and labels the
    other half, on which the strong student learns: no model labels its own training data."""
    order = np.random.default_rng(seed).permutation(len(data.x))
    first, second = order[: len(order) // 2], order[len(order) // 2 :]
    if len(first) == 0 or len(second) == 0:
        raise ValueError("bootstrap needs at least two training points")
    middle = fit_classifier(intermediate, data.x[first], data.weak_probs[first], data.x_val, data.val_targets, seed)
    labels = predict_probs(middle.net, data.x[second])
    # The strong student's supervisor is now the intermediate: honest selection uses its labels.
    val = data.val_targets if data.oracle else predict_probs(middle.net, data.x_val)
    student = fit_classifier(spec, data.x[second], labels, data.x_val, val, seed)
    return student, {"intermediate_n_train": len(first), "intermediate_best_epoch": middle.best_epoch}


def _probe_filtered(spec: FitSpec, params: dict, data: StudentData, seed: int) -> tuple[FitResult, dict]:
    """EleutherAI: a probe on the strong features, fitted on the weak labels, drops (or
    relabels) the training and validation points where it disagrees most; then xent.
    Ground-truth validation targets (oracle) are left as they are."""
    probe = ProbeFilter(**params)
    keep, targets, val_keep, val_targets = probe.apply(data.x, data.weak_probs, data.x_val, data.val_targets)
    if data.oracle:
        val_keep, val_targets = np.ones(len(data.x_val), dtype=bool), data.val_targets
    fit = fit_classifier(spec, data.x[keep], targets[keep], data.x_val[val_keep], val_targets[val_keep], seed)
    return fit, {"probe_kept": int(keep.sum()), "probe_val_kept": int(val_keep.sum())}


def _co_supervised(spec: FitSpec, params: dict, data: StudentData, seed: int, levels: list[Level]) -> tuple[FitResult, dict]:
    def student(keep, targets, val_targets, epochs):
        val = data.val_targets if data.oracle else val_targets
        result = fit_classifier(replace(spec, epochs=epochs), data.x[keep], targets, data.x_val, val, seed)
        return StudentFit(predict_probs(result.net, data.x), predict_probs(result.net, data.x_val), result)

    outcome = co_supervise(
        levels, student, spec.epochs, spec.batch_size or None,
        top_k=params["top_k"], local_global=params["local_global"], hard=params["hard"],
    )
    facts = {
        f"level{i}": {"teachers": r.teachers, "kept": r.kept, "consistency": r.consistency,
                      "local_global_rejected": r.local_global_rejected, "epochs": r.epochs}
        for i, r in enumerate(outcome.levels)
    }
    return outcome.student.result, facts
