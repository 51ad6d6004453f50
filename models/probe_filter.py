"""Probe filtering of weak labels (EleutherAI's w2s, ``w2s/probe.py`` and ``w2s/sft.py``).

Before the student trains, a probe is fitted on the strong side's features of the training
points with the weak labels as targets. Where the probe's prediction disagrees most with
the weak label, the point is dropped (``filter``: the ``contamination`` share with the
largest disagreement) or the weak label is replaced by the probe's prediction
(``relabel``). The authors apply the same to the validation split, with the probe fitted on
the training points only.

- ``knn`` (their default, ``k = 20``): the mean weak label of the ``k`` nearest training
  points in Euclidean distance; on the training points themselves each point is among its
  own neighbours (their code queries the set it was fitted on).
- ``logistic`` (``l2p = 1e-3``): a linear probe from zero weights, fitted by L-BFGS (strong
  Wolfe, at most 10,000 iterations in one call) on ``mean BCE + l2p · ||w||²`` (no penalty
  on the bias), predicting ``sigmoid``.

Disagreement is ``|prediction − weak label|`` on the positive class's probability; their
``contamination`` defaults to 0.1 and ``int(contamination · n)`` points are dropped.

Extensions of ours, for more than two classes: labels are probability vectors, the kNN
prediction their mean, disagreement the total-variation distance ``½ Σ |p − q|`` (equal to
``|p₁ − q₁|`` for two classes), and the logistic probe a softmax regression on soft
targets. Among equal disagreements the earlier point is dropped first (the authors'
``argsort`` leaves that order unspecified).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

Probe = Literal["knn", "logistic"]
Mode = Literal["filter", "relabel"]


def knn_predict(train_x: np.ndarray, train_labels: np.ndarray, query_x: np.ndarray, k: int = 20,
                chunk: int = 2048) -> np.ndarray:
    """Mean label ``(m, c)`` of each query's ``k`` nearest training points (Euclidean)."""
    train = torch.as_tensor(train_x, dtype=torch.float64)
    labels = torch.as_tensor(train_labels, dtype=torch.float64)
    k = min(k, len(train))
    out = []
    for start in range(0, len(query_x), chunk):
        query = torch.as_tensor(query_x[start : start + chunk], dtype=torch.float64)
        nearest = torch.cdist(query, train).topk(k, largest=False).indices
        out.append(labels[nearest].mean(dim=1))
    return torch.cat(out).numpy() if out else np.zeros((0, train_labels.shape[1]))


@dataclass
class LogisticProbe:
    """The authors' logistic probe: zero-initialised, L2 penalty ``l2p · ||w||²`` on the mean loss."""

    l2p: float = 1e-3
    max_iter: int = 10_000
    weight: torch.Tensor | None = None
    bias: torch.Tensor | None = None

    def fit(self, x: np.ndarray, labels: np.ndarray) -> LogisticProbe:
        x = torch.as_tensor(x, dtype=torch.float64)
        y = torch.as_tensor(labels, dtype=torch.float64)
        binary = y.shape[1] == 2
        outputs = 1 if binary else y.shape[1]
        w = torch.zeros(x.shape[1], outputs, dtype=torch.float64, requires_grad=True)
        b = torch.zeros(outputs, dtype=torch.float64, requires_grad=True)
        optimizer = torch.optim.LBFGS([w, b], line_search_fn="strong_wolfe", max_iter=self.max_iter)

        def closure():
            optimizer.zero_grad()
            logits = x @ w + b
            if binary:
                loss = torch.nn.functional.binary_cross_entropy_with_logits(logits[:, 0], y[:, 1])
            else:
                loss = -(y * torch.log_softmax(logits, dim=-1)).sum(dim=-1).mean()
            loss = loss + self.l2p * w.square().sum()
            loss.backward()
            return loss

        optimizer.step(closure)
        self.weight, self.bias = w.detach(), b.detach()
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        logits = torch.as_tensor(x, dtype=torch.float64) @ self.weight + self.bias
        if logits.shape[1] == 1:
            p1 = torch.sigmoid(logits[:, 0])
            return torch.stack([1 - p1, p1], dim=1).numpy()
        return torch.softmax(logits, dim=-1).numpy()


def disagreement(pred: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Total-variation distance per point: ``|p₁ − q₁|`` for two classes."""
    return 0.5 * np.abs(np.asarray(pred, dtype=np.float64) - np.asarray(labels, dtype=np.float64)).sum(axis=1)


def keep_agreeing(pred: np.ndarray, labels: np.ndarray, contamination: float) -> np.ndarray:
    """Boolean mask without the ``int(contamination · n)`` points of largest disagreement."""
    gap = disagreement(pred, labels)
    order = np.argsort(-gap, kind="stable")
    keep = np.ones(len(gap), dtype=bool)
    keep[order[: int(contamination * len(gap))]] = False
    return keep


@dataclass(frozen=True)
class ProbeFilter:
    """EleutherAI's probe filtering with their defaults: kNN probe, k = 20, filter 10%."""

    probe: Probe = "knn"
    k: int = 20
    l2p: float = 1e-3
    contamination: float = 0.1
    mode: Mode = "filter"

    def predict(self, x: np.ndarray, labels: np.ndarray, query: list[np.ndarray]) -> list[np.ndarray]:
        """The probe, fitted on ``(x, labels)``, on each array of ``query``."""
        if self.probe == "knn":
            return [knn_predict(x, labels, q, self.k) for q in query]
        if self.probe == "logistic":
            fitted = LogisticProbe(self.l2p).fit(x, labels)
            return [fitted.predict(q) for q in query]
        raise ValueError(f"unknown probe {self.probe!r}; expected 'knn' or 'logistic'")

    def apply(self, x: np.ndarray, labels: np.ndarray, x_val: np.ndarray, val_labels: np.ndarray):
        """``(keep, targets, val_keep, val_targets)``: which training and validation points
        stay and the labels they keep (the probe's, with ``relabel``)."""
        pred, val_pred = self.predict(x, labels, [x, x_val])
        if self.mode == "filter":
            return (keep_agreeing(pred, labels, self.contamination), labels,
                    keep_agreeing(val_pred, val_labels, self.contamination), val_labels)
        if self.mode == "relabel":
            return np.ones(len(x), bool), pred.astype(np.float32), np.ones(len(x_val), bool), val_pred.astype(np.float32)
        raise ValueError(f"unknown probe mode {self.mode!r}; expected 'filter' or 'relabel'")
