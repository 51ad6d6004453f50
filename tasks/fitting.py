"""What the three training stages share: a config slice becomes a fit, saved with its predictions."""

from __future__ import annotations

import numpy as np

from models.head import fit_spec
from models.metrics import accuracy
from tasks.artifacts import SourceSplits, TrainedModel, splits_of
from tasks.finetuning import concat, finetune_and_save, raw_inputs
from tasks.specs import BackboneConfig, ModelConfig
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


def fit_on_ground_truth(
    out: StageOutput, cfg: ModelConfig, seed: int, sources: list[SourceSplits], finetune: BackboneConfig | None,
    features: str,
) -> None:
    """A model on the ground truth of ``weak_train`` (the weak model, or the ceiling), its epoch
    chosen on ``val``: ``finetune`` fine-tunes that backbone on the rows' raw inputs, else a
    ``cfg`` head fits the splits' ``features`` (``x_weak``: the weak view, ``x``: the strong)."""
    from models.labels import one_hot

    train, val, test = (splits_of(sources, s) for s in ("weak_train", "val", "test"))
    k = train.n_classes
    targets, val_targets = one_hot(train.label, k), one_hot(val.label, k)
    if finetune is not None:
        raw = {s: concat(raw_inputs(sources, s)) for s in ("weak_train", "val", "test")}
        probs = finetune_and_save(out, finetune, seed, raw["weak_train"], targets, raw["val"], val_targets, raw["test"])
    else:
        x, x_val, x_test = (getattr(split, features) for split in (train, val, test))
        probs = train_classifier(out, cfg, seed, x, targets, x_val, val_targets, x_test)
    TrainedModel.record(out, test_acc=accuracy(probs, test.label))

