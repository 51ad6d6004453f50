"""One lean Trainer factory and the fit / predict helpers every stage uses."""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch

from models import progress
from models.batching import Padding
from models.classifier import Classifier, SoftLabelClassifier

# Lightning announces devices and tips on every fit; a pipeline of many small fits
# drowns in them.
for _name in ("lightning.pytorch", "lightning.fabric", "lightning"):
    logging.getLogger(_name).setLevel(logging.WARNING)
warnings.filterwarnings("ignore", message=".*does not have many workers.*")
warnings.filterwarnings("ignore", message=".*LBFGS.*")
warnings.filterwarnings("ignore", message=".*LeafSpec.*is deprecated.*")


def make_trainer(
    max_epochs: int, callbacks: list | None = None, accelerator: str = "auto", precision: str = "32-true",
    deterministic: bool | str = True, accumulate_grad_batches: int = 1,
) -> L.Trainer:
    """A Trainer without the per-step extras small models cannot afford.

    No progress bar, logger, summary, sanity pass or checkpoint files: per-epoch figures
    live on the module and the best weights are kept in memory by :class:`KeepBest`. Its
    steps are counted on the process's progress meter (:class:`MeterSteps`), if one listens.
    """
    return L.Trainer(
        max_epochs=max_epochs,
        accelerator=accelerator,
        devices=1,
        precision=precision,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
        deterministic=deterministic,
        accumulate_grad_batches=accumulate_grad_batches,
        callbacks=[*(callbacks or []), MeterSteps()],
    )


class MeterSteps(L.Callback):
    """Counts a fit's training steps on a :func:`models.progress.meter`: ``epochs`` when an
    epoch is one full batch (L-BFGS), ``steps`` otherwise. Early stopping closes it short."""

    meter: progress.Meter | None = None

    def on_train_start(self, trainer, module):
        if not progress.reporting():
            return
        per_epoch = trainer.num_training_batches
        known = isinstance(per_epoch, int) and trainer.max_epochs and trainer.max_epochs > 0
        self.meter = progress.meter("epochs" if per_epoch == 1 else "steps", per_epoch * trainer.max_epochs if known else None)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if self.meter is not None:
            self.meter.advance()

    def on_train_end(self, trainer, module):
        self._close()

    def on_exception(self, trainer, module, exception):
        self._close()

    def _close(self):
        if self.meter is not None:
            self.meter.close()
            self.meter = None


class KeepBest(L.Callback):
    """Keeps, for each replica, the weights of its epoch with the lowest validation loss, in
    memory; stops once no replica has improved (by a relative ``min_delta``) for
    ``patience`` epochs. Without validation data it keeps the last epoch.

    Epochs before ``start_epoch`` are neither kept nor counted: a loss with a schedule
    (a warm-up of its auxiliary term) is not yet the method's loss there, and the weak
    labels the checkpoint is chosen on would always prefer the plain imitation of them.
    """

    def __init__(self, patience: int = 2, min_delta: float = 1e-4, start_epoch: int = 0):
        self.patience, self.min_delta, self.start_epoch = patience, min_delta, start_epoch
        self.best_loss: torch.Tensor | None = None
        self.best_epochs: torch.Tensor | None = None
        self.best_state: dict[str, torch.Tensor] | None = None

    def on_train_epoch_end(self, trainer, module):
        losses = module.val_losses
        epoch = trainer.current_epoch
        if losses is None or epoch < self.start_epoch:
            return
        if self.best_loss is None:
            self.best_loss = torch.full_like(losses, float("inf"))
            self.best_epochs = torch.full(losses.shape, -1, dtype=torch.long)
            self.best_state = {k: v.detach().clone() for k, v in module.net.state_dict().items()}
        improved = (losses < self.best_loss * (1 - self.min_delta)).cpu()
        if improved.any():
            self.best_loss = torch.where(improved.to(losses.device), losses, self.best_loss)
            self.best_epochs[improved] = epoch
            for name, value in module.net.state_dict().items():  # every tensor leads with the replica axis
                self.best_state[name][improved] = value.detach()[improved]
        if epoch - int(self.best_epochs.max()) >= self.patience:
            trainer.should_stop = True


class MiniBatches:
    """Shuffled batches of ``batch_size`` points along the point axis (``-2``), reshuffled
    every epoch from a seeded generator; the replica axis, if any, is kept whole."""

    def __init__(self, data: FullBatch, batch_size: int, seed: int):
        self.data, self.batch_size = data, batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self.n = data.batch[0].shape[-2]

    def __iter__(self):
        order = torch.randperm(self.n, generator=self.generator)
        x, target, weights = self.data.batch
        for start in range(0, self.n, self.batch_size):
            idx = order[start : start + self.batch_size]
            yield x[..., idx, :], target[..., idx, :], weights[..., idx]

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)


class FullBatch:
    """An epoch of one batch: the whole split. Small data makes per-step overhead the cost.

    ``x`` is ``(n, d)``, or ``(R, n, d)`` when each replica has its own points; ``weights``
    (default all ones) zero out the padding of replicas with fewer points.
    """

    def __init__(self, x: np.ndarray, target_probs: np.ndarray, weights: np.ndarray | None = None):
        x = torch.as_tensor(x, dtype=torch.float32)
        w = torch.ones(x.shape[:-1]) if weights is None else torch.as_tensor(weights, dtype=torch.float32)
        self.batch = (x, torch.as_tensor(target_probs, dtype=torch.float32), w)

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
    batch_size: int = 0  # 0: the whole split in one batch


@dataclass
class FitResult:
    net: Classifier
    history: list[dict[str, float]]
    best_epochs: np.ndarray  # per replica; -1 where no validation chose one (the last epoch is kept)

    @property
    def best_epoch(self) -> int:
        return int(self.best_epochs.max())


def fit_classifier(
    spec: FitSpec,
    x: np.ndarray,
    target_probs: np.ndarray,
    x_val: np.ndarray | None,
    val_probs: np.ndarray | None,
    seed: int,
    weights: np.ndarray | None = None,
    val_weights: np.ndarray | None = None,
    loss_fn=None,
) -> FitResult:
    """Training on soft targets: full batch, or shuffled minibatches of ``spec.batch_size``.

    With validation data, each replica keeps its epoch with the lowest validation loss,
    from the first epoch at which a scheduled ``loss_fn`` has its final form on
    (:func:`first_settled_epoch`); without, training runs all epochs (L-BFGS stops early by itself once converged) and
    keeps the last, as scikit-learn's ``LogisticRegression`` does. A 3-D ``x`` trains one
    replica per leading index, each on its own points. ``loss_fn`` (see
    :data:`models.classifier.LossFn`) replaces the soft cross-entropy.
    """
    torch.manual_seed(seed)
    data = FullBatch(x, target_probs, weights)
    loader = MiniBatches(data, spec.batch_size, seed) if 0 < spec.batch_size < data.batch[0].shape[-2] else data
    replicas = x.shape[0] if x.ndim == 3 else spec.replicas
    net = Classifier(x.shape[-1], target_probs.shape[-1], spec.arch, spec.hidden, replicas)
    extra = {"loss_fn": loss_fn} if loss_fn is not None else {}
    total_steps = spec.epochs * len(loader)
    module = SoftLabelClassifier(
        net, C=spec.C, n_train=data.batch[2].sum(dim=-1), optimizer=spec.optimizer, lr=spec.lr,
        lbfgs_iters=spec.lbfgs_iters, total_steps=total_steps, **extra,
    )
    if x_val is not None:
        module.val_batch = FullBatch(x_val, val_probs, val_weights).batch
    best = KeepBest(spec.patience, start_epoch=first_settled_epoch(loss_fn, total_steps, len(loader), spec.epochs))
    make_trainer(spec.epochs, callbacks=[best]).fit(module, train_dataloaders=loader)
    if best.best_state is not None:
        net.load_state_dict(best.best_state)
    best_epochs = best.best_epochs.numpy() if best.best_epochs is not None else np.full(replicas, -1)
    return FitResult(net=net.cpu().eval(), history=module.history, best_epochs=best_epochs)


def first_settled_epoch(loss_fn, total_steps: int, steps_per_epoch: int, epochs: int) -> int:
    """The first epoch whose every step sees the loss in its final form (0 for a loss
    without a schedule; at most the last epoch). A scheduled loss says where its schedule
    ends through ``schedule_end(total_steps)``, the first step from which it no longer
    changes with the step."""
    end = getattr(loss_fn, "schedule_end", None)
    if end is None:
        return 0
    return min(epochs - 1, -(-int(end(total_steps)) // steps_per_epoch))


@torch.no_grad()
def predict_probs(net: Classifier, x: np.ndarray, batch_size: int = 65536) -> np.ndarray:
    """Class probabilities ``(n, k)``, averaged over replicas."""
    out = []
    for start in range(0, len(x), batch_size):
        xb = torch.as_tensor(x[start : start + batch_size], dtype=torch.float32)
        out.append(torch.softmax(net(xb), dim=-1).mean(dim=0))
    return torch.cat(out).numpy() if out else np.zeros((0, 2), dtype=np.float32)


def fit_many(
    spec: FitSpec,
    x: np.ndarray,
    target_probs: np.ndarray,
    train_ids: np.ndarray,
    x_eval: np.ndarray,
    eval_ids: np.ndarray,
    n_problems: int,
    seed: int,
    keep: np.ndarray | None = None,
    max_elements: int = 2**24,
) -> np.ndarray:
    """Fit one model per problem (rows tagged by ``train_ids``), all at once, without validation.

    Returns each ``x_eval`` row's class probabilities under its own problem's model.
    ``keep`` (boolean) selects the training rows; a problem left with none gets an all-zero
    model (uniform probabilities). Problems are fitted in chunks of similar size, each of
    at most ``max_elements`` padded input values, so that one large problem does not pad
    all the others to its size and memory stays bounded.
    """
    if keep is not None:
        x, target_probs, train_ids = x[keep], target_probs[keep], train_ids[keep]
    sizes = np.bincount(train_ids, minlength=n_problems)
    by_size = np.argsort(sizes, kind="stable")
    rank = np.empty(n_problems, dtype=np.int64)
    rank[by_size] = np.arange(n_problems)  # problems renumbered smallest first
    train, held = Padding(rank[train_ids], n_problems), Padding(rank[eval_ids], n_problems)
    probs = np.empty((len(x_eval), target_probs.shape[-1]), dtype=np.float32)
    start = 0
    fitted = progress.meter("problems", n_problems)
    while start < n_problems:
        stop, width = start + 1, max(train.counts[start], held.counts[start], 1)
        while stop < n_problems:
            wider = max(width, train.counts[stop], held.counts[stop])
            if (stop + 1 - start) * wider * x.shape[-1] > max_elements:
                break
            stop, width = stop + 1, wider
        fit = fit_classifier(
            spec, train.pad(x, start, stop), train.pad(target_probs, start, stop), None, None,
            seed + start, weights=train.mask(start, stop),
        )
        held.unpad(replica_probs(fit.net, held.pad(x_eval, start, stop)), probs, start, stop)
        start = stop
        fitted.update(start)
    fitted.close()
    return probs


@torch.no_grad()
def replica_probs(net: Classifier, x: np.ndarray) -> np.ndarray:
    """Class probabilities ``(R, m, k)`` of each replica on its own points ``x`` (``(R, m, d)``)."""
    return torch.softmax(net(torch.as_tensor(x, dtype=torch.float32)), dim=-1).numpy()


def save_classifier(result: FitResult, spec: FitSpec, path: Path) -> None:
    """Weights as a plain tensor file plus the architecture as JSON: loading runs no pickled code."""
    path.mkdir(parents=True, exist_ok=True)
    net = result.net
    shape = {"d_in": net.d_in, "n_classes": net.n_classes}
    (path / "classifier.json").write_text(json.dumps({"spec": asdict(spec), **shape}, sort_keys=True))
    torch.save(net.state_dict(), path / "weights.pt")


def load_classifier(path: Path) -> Classifier:
    meta = json.loads((path / "classifier.json").read_text())
    spec = FitSpec(**meta["spec"])
    net = Classifier(meta["d_in"], meta["n_classes"], spec.arch, spec.hidden, spec.replicas)
    net.load_state_dict(torch.load(path / "weights.pt", weights_only=True))
    return net.eval()
