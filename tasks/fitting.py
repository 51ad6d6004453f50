"""What the three training stages share: a config slice becomes a fit, saved with its predictions."""

from __future__ import annotations

import numpy as np

from models.head import fit_spec
from tasks.artifacts import TrainedModel
from tasks.specs import ModelConfig
from tasks.stage import StageOutput


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
    from models.training import fit_classifier, predict_probs

    if len(x) == 0:
        raise ValueError("the training split is empty")
    spec = fit_spec(cfg)
    result = fit_classifier(spec, x, targets, x_val, val_targets, seed)
    test_probs = predict_probs(result.net, x_test)
    save_fit(out, result, spec, test_probs, n_train=len(x))
    return test_probs


def save_fit(out: StageOutput, result, spec, test_probs: np.ndarray, **facts) -> None:
    """A head fitted on features (models.training's ``FitResult``), as a ``TrainedModel``."""
    from models.training import save_classifier

    save_classifier(result, spec, TrainedModel.model_path(out))
    TrainedModel.write_fit(out, test_probs, result.history, result.best_epoch, **facts)
