"""Losses of strong training, as pure functions of logits and targets."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_cross_entropy(logits: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy against soft targets; ``logits`` may carry leading replica dims."""
    return -(target_probs * F.log_softmax(logits, dim=-1)).sum(dim=-1).mean(dim=-1).sum()


def l2_penalty(weight: torch.Tensor, C: float, n: int) -> torch.Tensor:
    """scikit-learn's L2 term for an inverse strength ``C``, scaled to a mean (not summed) loss."""
    return (weight**2).sum() / (2.0 * C * n)
