"""What the three training stages share: a config slice becomes a fit, saved with its predictions."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from tasks.data import save_array
from tasks.stage import StageOutput

if TYPE_CHECKING:
    from flows.config import ModelConfig


def fit_spec(cfg: ModelConfig):
    """The fitting recipe a model config describes."""
    from models.training import FitSpec

    return FitSpec(
        arch=cfg.arch, hidden=cfg.hidden, C=cfg.C, optimizer=cfg.optimizer, lr=cfg.lr,
        epochs=cfg.epochs, lbfgs_iters=cfg.lbfgs_iters, patience=cfg.patience, batch_size=cfg.batch_size,
    )


def train_classifier(
    out: StageOutput,
    cfg: ModelConfig,
    seed: int,
    x: np.ndarray,
    targets: np.ndarray,
    x_val: np.ndarray,
    val_targets: np.ndarray,
    x_test: np.ndarray,
) -> np.ndarray:
    """Fit on soft ``targets``, select the epoch on ``val_targets``, save weights, test
    probabilities and the per-epoch history; return the test probabilities."""
    from models.training import fit_classifier, predict_probs, save_classifier

    if len(x) == 0:
        raise ValueError("the training split is empty")
    spec = fit_spec(cfg)
    result = fit_classifier(spec, x, targets, x_val, val_targets, seed)
    save_classifier(result, spec, out.path("model"))
    test_probs = predict_probs(result.net, x_test)
    save_array(out.dir, "test_probs", test_probs)
    out.histories[""] = result.history
    out.facts.update(n_train=len(x), best_epoch=result.best_epoch, epochs_run=len(result.history))
    return test_probs
