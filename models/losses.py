"""Losses of strong training, as pure functions of logits and targets.

Tensors may carry a leading *replica* dimension ``R`` (independent models trained as one):
losses are means over a replica's points and sums over replicas, so that each replica's
gradient is exactly that of its own problem.
"""

from __future__ import annotations

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
