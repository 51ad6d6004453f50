"""One lean Trainer factory and the fit / predict helpers every stage uses."""

from __future__ import annotations

import copy
import json
import logging
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch

from models.classifier import Classifier, SoftLabelClassifier

# Lightning announces devices and tips on every fit; a pipeline of many small fits
# drowns in them.
for _name in ("lightning.pytorch", "lightning.fabric", "lightning"):
    logging.getLogger(_name).setLevel(logging.WARNING)
warnings.filterwarnings("ignore", message=".*does not have many workers.*")
warnings.filterwarnings("ignore", message=".*LBFGS.*")
warnings.filterwarnings("ignore", message=".*LeafSpec.*is deprecated.*")


def make_trainer(max_epochs: int, callbacks: list | None = None, accelerator: str = "auto") -> L.Trainer:
    """A Trainer without the per-step extras small models cannot afford.

    No progress bar, logger, summary, sanity pass or checkpoint files: per-epoch figures
    live on the module and the best weights are kept in memory by :class:`KeepBest`.
    """
    return L.Trainer(
        max_epochs=max_epochs,
        accelerator=accelerator,
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
        deterministic=True,
        callbacks=callbacks or [],
    )


class KeepBest(L.Callback):
    """Keeps the weights of the epoch with the lowest validation loss, in memory, and
    stops after ``patience`` epochs without a relative improvement of ``min_delta``."""

    def __init__(self, patience: int = 2, min_delta: float = 1e-4):
        self.patience, self.min_delta = patience, min_delta
        self.best_loss, self.best_epoch, self.best_state = float("inf"), -1, None

    def on_train_epoch_end(self, trainer, module):
        loss = module.history[-1].get("val_loss", float("inf")) if module.history else float("inf")
        if loss < self.best_loss * (1 - self.min_delta):
            self.best_loss, self.best_epoch = loss, trainer.current_epoch
            self.best_state = copy.deepcopy(module.net.state_dict())
        elif trainer.current_epoch - self.best_epoch >= self.patience:
            trainer.should_stop = True


class FullBatch:
    """An epoch of one batch: the whole split. Small data makes per-step overhead the cost."""

    def __init__(self, x: np.ndarray, target_probs: np.ndarray):
        self.batch = (torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(target_probs, dtype=torch.float32))

    def __iter__(self):
        yield self.batch

    def __len__(self) -> int:
        return 1


@dataclass(frozen=True)
class FitSpec:
    """How to train one classifier: architecture, regularisation, optimiser, epochs."""

    arch: str = "linear"
    hidden: int = 64
    C: float = 1.0
    optimizer: str = "lbfgs"
    lr: float = 1.0
    epochs: int = 10
    lbfgs_iters: int = 20
    patience: int = 2
    replicas: int = 1


@dataclass
class FitResult:
    net: Classifier
    history: list[dict[str, float]]
    best_epoch: int


def fit_classifier(
    spec: FitSpec,
    x: np.ndarray,
    target_probs: np.ndarray,
    x_val: np.ndarray,
    val_probs: np.ndarray,
    seed: int,
) -> FitResult:
    """Full-batch training on soft targets; the epoch with the lowest validation loss wins."""
    torch.manual_seed(seed)
    n_classes = target_probs.shape[1]
    net = Classifier(x.shape[1], n_classes, spec.arch, spec.hidden, spec.replicas)
    module = SoftLabelClassifier(
        net, C=spec.C, n_train=len(x), optimizer=spec.optimizer, lr=spec.lr, lbfgs_iters=spec.lbfgs_iters
    )
    module.val_batch = FullBatch(x_val, val_probs).batch
    best = KeepBest(spec.patience)
    make_trainer(spec.epochs, callbacks=[best]).fit(module, train_dataloaders=FullBatch(x, target_probs))
    if best.best_state is not None:
        net.load_state_dict(best.best_state)
    return FitResult(net=net.cpu().eval(), history=module.history, best_epoch=best.best_epoch)


@torch.no_grad()
def predict_probs(net: Classifier, x: np.ndarray, batch_size: int = 65536) -> np.ndarray:
    """Class probabilities ``(n, k)``, averaged over replicas."""
    out = []
    for start in range(0, len(x), batch_size):
        xb = torch.as_tensor(x[start : start + batch_size], dtype=torch.float32)
        out.append(torch.softmax(net(xb), dim=-1).mean(dim=0))
    return torch.cat(out).numpy() if out else np.zeros((0, 2), dtype=np.float32)


def one_hot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    return np.eye(n_classes, dtype=np.float32)[labels]


def save_classifier(result: FitResult, spec: FitSpec, path: Path) -> None:
    """Weights as a plain tensor file plus the architecture as JSON: loading runs no pickled code."""
    path.mkdir(parents=True, exist_ok=True)
    net = result.net
    shape = {"d_in": net.layers[0].weight.shape[1], "n_classes": net.layers[-1].weight.shape[2]}
    (path / "classifier.json").write_text(json.dumps({"spec": asdict(spec), **shape}, sort_keys=True))
    torch.save(net.state_dict(), path / "weights.pt")


def load_classifier(path: Path) -> Classifier:
    meta = json.loads((path / "classifier.json").read_text())
    spec = FitSpec(**meta["spec"])
    net = Classifier(meta["d_in"], meta["n_classes"], spec.arch, spec.hidden, spec.replicas)
    net.load_state_dict(torch.load(path / "weights.pt", weights_only=True))
    return net.eval()
