"""Losses of strong training, as pure functions of logits and targets.

Tensors may carry a leading *replica* dimension ``R`` (independent models trained as one):
losses are means over a replica's points and sums over replicas, so that each replica's
gradient is exactly that of its own problem.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def soft_cross_entropy(
    logits: torch.Tensor, target_probs: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Cross-entropy against soft targets: a (weighted) mean over points, summed over replicas.

    ``weights`` (``(..., n)``, e.g. a 0/1 mask of padded points) make the mean a weighted one.
    """
    ce = -(target_probs * F.log_softmax(logits, dim=-1)).sum(dim=-1)
    if weights is None:
        return ce.mean(dim=-1).sum()
    return ((ce * weights).sum(dim=-1) / weights.sum(dim=-1).clamp_min(1e-12)).sum()


def l2_penalty(weight: torch.Tensor, C: float, n: float | torch.Tensor) -> torch.Tensor:
    """scikit-learn's L2 term for an inverse strength ``C``, scaled to a mean (not summed) loss.

    ``weight`` is ``(R, d_in, d_out)``; ``n`` the points each replica is fitted on (a number
    or a tensor of shape ``(R,)``). A replica with no points is treated as having one.
    """
    n = torch.as_tensor(n, dtype=weight.dtype, device=weight.device).clamp_min(1.0)
    per_replica = (weight**2).sum(dim=(-2, -1)) if weight.dim() >= 2 else (weight**2).sum()
    return (per_replica / (2.0 * C * n)).sum()


# --- Auxiliary confidence loss (Burns et al., 2023; docs/methods.md) ----------------------


def aux_conf_alpha(step: int, total_steps: int, alpha_max: float, warmup: float = 0.2) -> float:
    """The paper's schedule: ``alpha`` rises linearly from 0 to ``alpha_max`` over the first
    ``warmup`` share of the steps, then stays there (no jump at the end of the warm-up)."""
    ramp = warmup * total_steps
    if ramp <= 0:
        return alpha_max
    return alpha_max * min(1.0, step / ramp)


def balanced_hard_labels(probs: torch.Tensor, shares: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
    """Hardened predictions that keep the class balance ``shares`` (``(..., k)``, summing to 1).

    Two classes, Burns et al.'s rule exactly: the threshold is ``torch.quantile`` (linear
    interpolation) of the class-0 probabilities at the positive share, and a point is
    positive where its class-0 probability is below it. More classes (an extension of
    ours): (point, class) pairs are taken from the most to the least confident, each point
    getting the first class whose quota (``share · n`` rounded, summing to ``n``) still has
    room. ``probs`` is ``(..., n, k)``; ``real`` (``(..., n)``, boolean) marks the rows that
    count, so that padding takes no part in the threshold or the quotas (padding rows get
    their argmax). Returns integer labels ``(..., n)``.
    """
    if real is None:
        real = torch.ones(probs.shape[:-1], dtype=torch.bool, device=probs.device)
    flat_probs = probs.detach().reshape(-1, *probs.shape[-2:])
    flat_shares, flat_real = shares.reshape(-1, shares.shape[-1]), real.reshape(-1, real.shape[-1])
    rule = _quantile_threshold_labels if probs.shape[-1] == 2 else _greedy_quota_labels
    out = []
    for p, s, r in zip(flat_probs, flat_shares, flat_real):
        labels = p.argmax(dim=-1)
        if r.any():
            labels[r] = rule(p[r], s)
        out.append(labels)
    return torch.stack(out).reshape(probs.shape[:-1])


def _quantile_threshold_labels(probs: torch.Tensor, shares: torch.Tensor) -> torch.Tensor:
    """Burns et al.'s ``logconf_loss_fn`` threshold on ``(n, 2)`` probabilities."""
    p0 = probs[:, 0]
    threshold = torch.quantile(p0, shares[1].to(p0.dtype).clamp(0.0, 1.0))
    return (p0 < threshold).long()


def _greedy_quota_labels(probs: torch.Tensor, shares: torch.Tensor) -> torch.Tensor:
    n, k = probs.shape
    quota = _quotas(shares, n)
    labels = torch.full((n,), -1, dtype=torch.long)
    for flat in torch.argsort(probs.reshape(-1).cpu(), descending=True, stable=True).tolist():
        i, c = divmod(flat, k)
        if labels[i] < 0 and quota[c] > 0:
            labels[i] = c
            quota[c] -= 1
    unassigned = labels < 0  # only when the shares sum to less than one
    labels[unassigned] = probs.cpu().argmax(dim=-1)[unassigned]
    return labels.to(probs.device)


def _quotas(shares: torch.Tensor, n: int) -> list[int]:
    """Integer class counts summing to ``n`` (the shares sum to one), each as close to
    ``share · n`` as rounding allows."""
    raw = shares.detach().cpu().double() * n
    quota = torch.floor(raw).long()
    short = n - int(quota.sum())
    for c in torch.argsort(raw - quota, descending=True, stable=True)[:short].tolist():
        quota[c] += 1
    return quota.tolist()


def aux_conf_targets(logits: torch.Tensor, weak_probs: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """The student's own predictions hardened to keep the weak labels' class balance in this
    batch (:func:`balanced_hard_labels`; rows of weight 0 are padding and take no part)."""
    probs = torch.softmax(logits.detach(), dim=-1)
    w = torch.ones(logits.shape[:-1], device=logits.device) if weights is None else weights
    share = w / w.sum(dim=-1, keepdim=True).clamp_min(1e-12)
    class_shares = (weak_probs.expand(logits.shape) * share.unsqueeze(-1)).sum(dim=-2)
    return balanced_hard_labels(probs, class_shares, real=w > 0)


def aux_confidence_loss(
    logits: torch.Tensor, weak_probs: torch.Tensor, alpha: float, weights: torch.Tensor | None = None,
    own: torch.Tensor | None = None,
) -> torch.Tensor:
    """``(1 − alpha)·CE(f(x), weak) + alpha·CE(f(x), hardened f(x))``. ``own`` are the
    hardened labels (:func:`aux_conf_targets` of these logits unless given); no gradient
    flows through them."""
    if own is None:
        own = aux_conf_targets(logits, weak_probs, weights)
    weak = weak_probs.expand(logits.shape)
    one_hot = F.one_hot(own, logits.shape[-1]).to(logits.dtype)
    return (1 - alpha) * soft_cross_entropy(logits, weak, weights) + alpha * soft_cross_entropy(logits, one_hot, weights)


# --- Product loss (Burns et al.'s code, ``product_loss_fn``) ---------------------------------


def product_targets(logits: torch.Tensor, weak_probs: torch.Tensor, alpha: float = 1.0, beta: float = 1.0) -> torch.Tensor:
    """``target ∝ softmax(logits)^beta · weak^alpha``, renormalised per point, without gradient.

    A point where the product is zero in every class (possible only when the student's
    probabilities underflow where the weak label has mass) gets an all-zero target, so it
    adds nothing to the loss; the authors' division would give NaN there.
    """
    with torch.no_grad():
        product = torch.softmax(logits, dim=-1).pow(beta) * weak_probs.expand(logits.shape).pow(alpha)
        return product / product.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(product.dtype).tiny)


# --- Adaptive confidence distillation (Guo et al., 2024; docs/methods.md) ------------------


def adaptive_confidence_beta(student_logits: torch.Tensor, teacher_logits: torch.Tensor, tau: float) -> torch.Tensor:
    """Per point ``beta = exp(CE_self/tau) / (exp(CE_self/tau) + exp(CE_t/tau))``, without gradient.

    ``CE_self`` is the student's cross-entropy on its own argmax, ``CE_t`` on the teacher's;
    the former is never larger, so ``beta <= 0.5``, with equality when the argmaxes agree.
    """
    with torch.no_grad():
        log_p = F.log_softmax(student_logits, dim=-1)
        ce_self = -log_p.max(dim=-1).values
        ce_teacher = -log_p.gather(-1, teacher_logits.expand(log_p.shape).argmax(dim=-1, keepdim=True)).squeeze(-1)
        return torch.sigmoid((ce_self - ce_teacher) / tau)


def adaptive_confidence_targets(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, tau: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """What the adaptive loss treats as constants: per point ``beta`` and the student's own
    argmax class."""
    beta = adaptive_confidence_beta(student_logits, teacher_logits, tau)
    return beta, student_logits.detach().argmax(dim=-1)


def adaptive_confidence_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    temperature: float = 1.0,
    tau: float = 0.5,
    beta_scale: float = 1.0,
    weights: torch.Tensor | None = None,
    frozen: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """``mean[(1 − beta)·T²·KL(softmax(z_t/T) ‖ softmax(z_s/T)) + beta·CE(z_s, argmax z_s)]``.

    ``beta_scale`` in [0, 1] multiplies ``beta`` (a ramp from 0 early in training).
    ``frozen``: ``(beta, own argmax)`` (:func:`adaptive_confidence_targets` of these logits
    unless given); no gradient flows through them.
    """
    beta, own = frozen if frozen is not None else adaptive_confidence_targets(student_logits, teacher_logits, tau)
    beta = beta_scale * beta
    t = temperature
    teacher = F.softmax(teacher_logits.expand(student_logits.shape) / t, dim=-1)
    kl = (teacher * (torch.log(teacher.clamp_min(1e-12)) - F.log_softmax(student_logits / t, dim=-1))).sum(dim=-1)
    self_ce = -F.log_softmax(student_logits, dim=-1).gather(-1, own.unsqueeze(-1)).squeeze(-1)
    per_point = (1 - beta) * t * t * kl + beta * self_ce
    if weights is None:
        return per_point.mean(dim=-1).sum()
    return ((per_point * weights).sum(dim=-1) / weights.sum(dim=-1).clamp_min(1e-12)).sum()


# --- The losses as objects a trainer calls (models.classifier.LossFn) ---------------------------

# A loss whose targets depend on the student itself (its hardened or own predictions, a
# per-point weight) treats them as constants: no gradient flows through them. Such a loss
# splits into ``step_targets`` (the constants, from the logits at the start of an optimiser
# step) and ``with_targets`` (the differentiable part); the trainer computes the constants
# once per step (models.classifier.SoftLabelClassifier). L-BFGS evaluates the loss many
# times per step: recomputing the targets at each trial point would make its line search
# minimise the self-referential objective itself, whose minimum is a student confident in
# one class everywhere (docs/methods.md, "Targets are constants of a step").


class SelfTargetLoss:
    """Called as a plain loss, the constants come from the same logits, without gradient."""

    def __call__(self, logits, target, weights, step, total_steps):
        frozen = self.step_targets(logits.detach(), target, weights, step, total_steps)
        return self.with_targets(logits, target, weights, step, total_steps, frozen)


@dataclass(frozen=True)
class AuxConfLoss(SelfTargetLoss):
    alpha_max: float = 0.75
    warmup: float = 0.2

    def step_targets(self, logits, target, weights, step, total_steps):
        return aux_conf_targets(logits, target, weights)

    def with_targets(self, logits, target, weights, step, total_steps, frozen):
        alpha = aux_conf_alpha(step, total_steps, self.alpha_max, self.warmup)
        return aux_confidence_loss(logits, target, alpha, weights, own=frozen)

    def schedule_end(self, total_steps: int) -> int:
        """The first step at which ``alpha`` has reached ``alpha_max``."""
        return math.ceil(self.warmup * total_steps)


@dataclass(frozen=True)
class AdaptConfLoss(SelfTargetLoss):
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

    def schedule_end(self, total_steps: int) -> int:
        """The first step at which ``beta`` is no longer scaled down."""
        return math.ceil(self.beta_ramp * total_steps)


@dataclass(frozen=True)
class ProductLoss(SelfTargetLoss):
    """Burns et al.'s ``product_loss_fn``: cross-entropy against ``softmax^beta · weak^alpha``,
    renormalised, no gradient through the target. Their ``warmup_frac`` (0.1) is stored but
    never used by their loss, so there is no warm-up here either."""

    alpha: float = 1.0
    beta: float = 1.0

    def step_targets(self, logits, target, weights, step, total_steps):
        return product_targets(logits, target, self.alpha, self.beta)

    def with_targets(self, logits, target, weights, step, total_steps, frozen):
        return soft_cross_entropy(logits, frozen, weights)
