"""Small classifiers and the LightningModule that trains them on (weak or true) soft labels.

Networks carry a leading *replica* dimension so that several independently initialised
copies (seeds) train as one vectorised model: tiny models are dominated by per-step
overhead, and one step for R replicas costs about as much as one step for one.
"""

from __future__ import annotations

import math
from typing import Callable, Literal

import lightning as L
import torch
from torch import nn

from models.losses import l2_penalty, soft_cross_entropy

Arch = Literal["linear", "mlp", "cnn"]


class ReplicatedLinear(nn.Module):
    """``R`` independent affine maps ``(R, n, d) -> (R, n, k)``."""

    def __init__(self, d_in: int, d_out: int, replicas: int = 1):
        super().__init__()
        bound = 1.0 / d_in**0.5
        self.weight = nn.Parameter(torch.empty(replicas, d_in, d_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(replicas, 1, d_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.expand(self.weight.shape[0], *x.shape)
        return torch.baddbmm(self.bias, x, self.weight)


class ReplicatedConv(nn.Module):
    """``R`` independent 3×3 convolutions as one grouped convolution; the parameters lead
    with the replica axis, as every replicated layer's do (KeepBest relies on it)."""

    def __init__(self, c_in: int, c_out: int, replicas: int):
        super().__init__()
        bound = 1.0 / (9 * c_in) ** 0.5
        self.weight = nn.Parameter(torch.empty(replicas, c_out, c_in, 3, 3).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(replicas, c_out))

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # (n, R * c_in, H, W) -> (n, R * c_out, H, W)
        r, c_out = self.weight.shape[:2]
        w = self.weight.reshape(r * c_out, *self.weight.shape[2:])
        return nn.functional.conv2d(h, w, self.bias.reshape(-1), padding=1, groups=r)


class ReplicatedConvNet(nn.Module):
    """``R`` independent two-layer conv nets over square one-channel images:
    ``(R, n, side²) -> (R, n, features)``."""

    def __init__(self, d_in: int, channels: int, replicas: int = 1):
        super().__init__()
        side = math.isqrt(d_in)
        if side * side != d_in or side < 2:
            raise ValueError(f"arch cnn needs square one-channel images; {d_in} inputs are not a square")
        self.side, self.replicas = side, replicas
        self.conv1 = ReplicatedConv(1, max(1, channels // 2), replicas)
        self.conv2 = ReplicatedConv(max(1, channels // 2), channels, replicas)
        self.out_features = channels * (side // 2) ** 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.replicas
        if x.dim() == 2:
            x = x.expand(r, *x.shape)
        n = x.shape[1]
        h = x.permute(1, 0, 2).reshape(n, r, self.side, self.side)
        h = torch.relu(self.conv2(torch.relu(self.conv1(h))))
        h = nn.functional.avg_pool2d(h, 2)  # (n, R * channels, side // 2, side // 2)
        return h.reshape(n, r, self.out_features).permute(1, 0, 2)


class Classifier(nn.Module):
    """Logistic regression (``linear``), a one-hidden-layer MLP, or a small CNN over square
    one-channel images (``hidden`` channels), replicated ``R`` times."""

    def __init__(self, d_in: int, n_classes: int, arch: Arch = "linear", hidden: int = 64, replicas: int = 1):
        super().__init__()
        self.d_in, self.n_classes = d_in, n_classes
        if arch == "cnn":
            body = ReplicatedConvNet(d_in, hidden, replicas)
            self.layers = nn.ModuleList([body, ReplicatedLinear(body.out_features, n_classes, replicas)])
        elif arch == "linear":
            self.layers = nn.ModuleList([ReplicatedLinear(d_in, n_classes, replicas)])
        elif arch == "mlp":
            self.layers = nn.ModuleList(
                [ReplicatedLinear(d_in, hidden, replicas), ReplicatedLinear(hidden, n_classes, replicas)]
            )
        else:
            raise ValueError(f"unknown architecture {arch!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        return x  # (R, n, k) logits

    def penalised_weights(self) -> list[torch.Tensor]:
        """Weights under the L2 penalty: every weight matrix, never a bias (as scikit-learn).

        With two classes only the difference of the two output columns shapes predictions;
        penalising that difference makes ``C`` mean what it means for scikit-learn's binary
        logistic regression (penalising both columns would halve the effective strength).
        """
        weights = [w for layer in self.layers for w in _weights_of(layer)]
        if weights[-1].shape[-1] == 2:
            weights[-1] = weights[-1][..., 1:] - weights[-1][..., :1]
        return weights


def _weights_of(layer: nn.Module) -> list[torch.Tensor]:
    if isinstance(layer, ReplicatedConvNet):
        return [layer.conv1.weight, layer.conv2.weight]
    return [layer.weight]


# ``loss(logits, target, weights, step, total_steps)``: the step lets a loss follow a schedule.
# A loss whose targets depend on the student also has ``step_targets(detached logits, target,
# weights, step, total_steps)`` and ``with_targets(logits, target, weights, step, total_steps,
# targets)``: the trainer computes the targets once per optimiser step (models/losses.py).
LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None, int, int], torch.Tensor]


def plain_soft_cross_entropy(logits, target, weights, step, total_steps) -> torch.Tensor:
    return soft_cross_entropy(logits, target, weights)


class SoftLabelClassifier(L.LightningModule):
    """Trains a :class:`Classifier` on soft targets with an L2 term of inverse strength ``C``.

    Each batch is ``(x, target_probs, weights)``, with a replica dimension when each replica
    has its own data (``(R, n, d)``; zero weights pad replicas with fewer points);
    ``loss_fn`` also sees the optimiser step and ``total_steps``, for losses with a schedule.
    ``val_batch`` has the same form and is scored against its own soft targets (weak labels
    of ``val`` unless the caller chose the oracle) after every epoch; ``val_losses`` holds
    the latest loss of each replica, and the per-epoch figures (means over replicas) are
    kept in ``history`` rather than sent through a logger.
    """

    def __init__(
        self,
        net: Classifier,
        C: float,
        n_train: float | torch.Tensor,
        loss_fn: LossFn = plain_soft_cross_entropy,
        optimizer: Literal["lbfgs", "adam"] = "lbfgs",
        lr: float = 1.0,
        lbfgs_iters: int = 20,
        total_steps: int = 1,
    ):
        super().__init__()
        self.net, self.C, self.n_train, self.loss_fn = net, C, n_train, loss_fn
        self.total_steps = total_steps
        self.optimizer_name, self.lr, self.lbfgs_iters = optimizer, lr, lbfgs_iters
        self.history: list[dict[str, float]] = []
        self._epoch: dict[str, float] = {}
        self.val_batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self.val_losses: torch.Tensor | None = None
        self._targets, self._targets_step = None, -1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def objective(self, x: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        logits, step = self.net(x), self.global_step
        if hasattr(self.loss_fn, "step_targets"):
            # The first evaluation of a step is at the step's starting point (L-BFGS evaluates
            # again at trial points within the same step): the targets are computed there, once.
            if self._targets_step != step:
                self._targets = self.loss_fn.step_targets(logits.detach(), target, weights, step, self.total_steps)
                self._targets_step = step
            loss = self.loss_fn.with_targets(logits, target, weights, step, self.total_steps, self._targets)
        else:
            loss = self.loss_fn(logits, target, weights, step, self.total_steps)
        for w in self.net.penalised_weights():
            loss = loss + l2_penalty(w, self.C, self.n_train)
        return loss

    def on_train_batch_start(self, batch, batch_idx):
        # With step targets the objective is a new function every step: L-BFGS's curvature
        # pairs from the last one would be wrong (a gradient change the step did not cause),
        # and stall it. Each step starts its memory afresh, from the new targets.
        if self.optimizer_name == "lbfgs" and hasattr(self.loss_fn, "step_targets"):
            self.optimizers().optimizer.state.clear()

    def training_step(self, batch, batch_idx):
        loss = self.objective(*batch)
        self._epoch["train_loss"] = float(loss.detach())
        return loss

    @torch.no_grad()
    def validate(self) -> None:
        """Score the fixed validation tensors after each epoch.

        Full-batch validation on one tensor pair needs no evaluation loop: running it here
        saves Lightning's per-epoch loop setup, which dominates fits of small models.
        """
        if self.val_batch is None:
            return
        x, target, weights = (t.to(self.device) for t in self.val_batch)
        logits = self.net(x)
        share = weights / weights.sum(dim=-1, keepdim=True).clamp_min(1e-12)
        ce = -(target * torch.log_softmax(logits, dim=-1)).sum(dim=-1)
        self.val_losses = (ce * share).sum(dim=-1)
        correct = (logits.argmax(-1) == target.argmax(-1)).float()
        self._epoch["val_loss"] = float(self.val_losses.mean())
        self._epoch["val_acc"] = float((correct * share).sum(dim=-1).mean())

    def on_train_batch_end(self, outputs, batch, batch_idx):
        # Scoring after the epoch's last batch, before the epoch-end hooks, lets callbacks
        # such as KeepBest see this epoch's validation loss.
        if batch_idx + 1 < self.trainer.num_training_batches:
            return
        self.validate()
        self.history.append({"epoch": self.current_epoch, **self._epoch})

    def configure_optimizers(self):
        if self.optimizer_name == "lbfgs":
            return torch.optim.LBFGS(
                self.parameters(), lr=self.lr, max_iter=self.lbfgs_iters, line_search_fn="strong_wolfe"
            )
        return torch.optim.Adam(self.parameters(), lr=self.lr)
