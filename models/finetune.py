"""Fine-tuning a pretrained Hugging Face backbone (text or vision, encoder or decoder LM) with a
linear head, through Lightning on the best accelerator there is.

The backbone is any ``transformers.AutoModel`` whose output carries ``last_hidden_state``
``(n, tokens, hidden)`` (see :mod:`models.backbone` for names, ``NAME:k`` cuts and pooling):
BERT / MiniLM / RoBERTa / DeBERTa and ViT / DINOv2, or GPT-2, GPT-NeoX / Pythia, Llama,
Mistral, Qwen2, whose texts are read at their last real token. Three ways to train:

- frozen features and a head: not here, see :mod:`models.training` on ``embed`` features;
- full fine-tuning: every weight trains (Burns et al.'s default);
- ``spec.lora``: the backbone stays frozen and low-rank adapters (``peft``) on its
  family's projections (:mod:`models.lora`) train with the head; a checkpoint is the small
  trainable part only.

``spec.precision="auto"`` is bf16 mixed precision on a GPU that supports it and fp32
elsewhere; ``grad_accum`` sums that many batches per optimiser step; ``grad_checkpointing``
recomputes activations in the backward pass instead of storing them (for the large models).

Everything here trains on one device. A multi-GPU run (Lightning's ``strategy="ddp"``)
re-executes its script once per rank, which a Prefect flow running in-process cannot
host: launch such a run as its own process (``torchrun --nproc_per_node=N script.py``).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import lightning as L
import numpy as np
import torch
from peft import inject_adapter_in_model
from safetensors.torch import load_file, save_file
from torch import nn
from transformers.utils import logging as hf_logging

from models.backbone import (
    counts_positions,
    load_backbone,
    load_pretrained,
    load_tokenizer,
    pooled_states,
    resolve_pooling,
    token_counts,
)
from models.classifier import LossFn, plain_soft_cross_entropy
from models.lora import lora_config
from models.losses import soft_cross_entropy
from models.training import first_settled_epoch, make_trainer

# transformers' weight-loading bars repeat on every fit (models.training quiets Lightning).
hf_logging.disable_progress_bar()

Inputs = dict[str, np.ndarray]

# Backbone keyword arguments an encoded batch may carry; anything else is not for the model.
_MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "pixel_values")
PRECISIONS = ("auto", "32-true", "bf16-mixed", "16-mixed", "bf16-true")


@dataclass(frozen=True)
class FinetuneSpec:
    """How to fine-tune one backbone: the one spec for every model and side.

    Tokens (read by :func:`encode_inputs` / :func:`predict_soft`): at most ``max_length``
    per text, cut on ``truncation_side``; ``drop_long`` is for the caller, who drops texts
    that do not fit (:func:`long_texts`) instead of cutting them. Optimisation: AdamW with
    ``lr`` and ``weight_decay`` (0 makes it Adam), ``batch_size`` texts per forward pass,
    ``grad_accum`` passes per optimiser step, a ``constant`` or ``cosine`` (annealed to 0
    over all steps) learning rate; ``dropout`` False trains with the backbone's dropout off
    (Burns et al.'s default). ``lora_*`` apply only with ``lora``. ``precision`` is
    Lightning's, or ``auto`` (:func:`resolve_precision`).
    """

    epochs: int = 3
    lr: float = 2e-5
    batch_size: int = 16
    grad_accum: int = 1
    weight_decay: float = 0.01
    lr_schedule: str = "constant"  # or "cosine"
    dropout: bool = True
    max_length: int = 128
    truncation_side: str = "right"
    drop_long: bool = False
    lora: bool = False
    lora_rank: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    patience: int = 2
    pooling: str = "auto"  # "mean", "cls", "last" (decoder LMs) or "auto" (by architecture)
    grad_checkpointing: bool = False
    accelerator: str = "auto"
    precision: str = "auto"

    def __post_init__(self):
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"lr_schedule: {self.lr_schedule!r} is not 'constant' or 'cosine'")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision: {self.precision!r} is not one of {', '.join(PRECISIONS)}")
        if self.grad_accum < 1 or self.batch_size < 1:
            raise ValueError("batch_size and grad_accum must be at least 1")


def resolve_precision(precision: str, accelerator: str = "auto") -> str:
    """``auto``: bf16 mixed precision where training runs on a GPU that has bf16, else fp32."""
    if precision != "auto":
        return precision
    on_gpu = accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    return "bf16-mixed" if on_gpu and torch.cuda.is_bf16_supported() else "32-true"


def _without_dropout(model: nn.Module) -> None:
    """Dropout off while the module stays in training mode (gradient checkpointing in
    transformers runs only in training mode): config rates and Dropout layers to 0."""
    config = model.config
    for attr, value in list(vars(config).items()):
        if ("dropout" in attr or "pdrop" in attr) and isinstance(value, float):
            setattr(config, attr, 0.0)
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
        for attr in ("attention_dropout", "dropout_prob"):  # rates read in forward by some attentions
            if isinstance(getattr(module, attr, None), float):
                setattr(module, attr, 0.0)


class BackboneClassifier(nn.Module):
    """A pretrained backbone pooled (see :mod:`models.backbone`), then a linear head.
    ``forward`` takes an encoded batch (see :func:`encode_inputs`)."""

    def __init__(self, backbone: str | Path, n_classes: int, spec: FinetuneSpec = FinetuneSpec()):
        super().__init__()
        self.backbone_name, self.n_classes, self.spec = str(backbone), n_classes, spec
        model = load_backbone(self.backbone_name)
        self.pooling = resolve_pooling(spec.pooling, model.config)
        self.mask_positions = counts_positions(model)
        if not spec.dropout:
            _without_dropout(model)
        if spec.lora:
            # Unlike get_peft_model, this keeps the plain model class (no wrapper, no
            # renamed keys) and freezes every backbone weight that is not an adapter.
            model = inject_adapter_in_model(lora_config(model, spec.lora_rank, spec.lora_alpha, spec.lora_dropout), model)
        if spec.grad_checkpointing:
            if not getattr(model, "supports_gradient_checkpointing", False):
                raise ValueError(f"grad_checkpointing: {type(model).__name__} does not support gradient checkpointing")
            # Non-reentrant, torch's recommended variant: it needs no input that requires a
            # gradient, which a frozen backbone's embeddings under LoRA do not give.
            enable = getattr(model, "activation_checkpointing_enable", None)  # its name since transformers 5.x
            if enable is not None:
                enable(activation_checkpointing_kwargs={"use_reentrant": False})
            else:
                model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        self.backbone = model
        self.head = nn.Linear(model.config.hidden_size, n_classes)
        self.train()  # from_pretrained hands the backbone over in eval mode, dropout off

    @property
    def backbone_path(self) -> str:  # the name it was built from; kept for older callers
        return self.backbone_name

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        dtype = self.head.weight.dtype  # a half-precision model needs half-precision pixels
        inputs = {k: v.to(dtype) if v.is_floating_point() else v for k, v in batch.items() if k in _MODEL_INPUTS}
        return self.head(pooled_states(self.backbone, inputs, self.pooling, self.mask_positions))

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """What training changes: the head and the adapters, or every weight without LoRA."""
        return {name: p.detach() for name, p in self.named_parameters() if p.requires_grad}

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        unexpected = self.load_state_dict(state, strict=False).unexpected_keys
        missing = self.trainable_state().keys() - state.keys()
        if unexpected or missing:
            raise ValueError(f"state does not fit this model: unexpected {unexpected}, missing {sorted(missing)}")


def _rows(inputs: dict[str, torch.Tensor], idx) -> dict[str, torch.Tensor]:
    batch = {k: v[idx] for k, v in inputs.items()}
    mask = batch.get("attention_mask")
    if mask is not None:
        # Texts are padded to the longest of the whole set; a batch needs only the columns
        # where one of its own texts has a token (left or right padding alike).
        keep = mask.bool().any(dim=0)
        batch = {k: v[:, keep] if v.shape == mask.shape else v for k, v in batch.items()}
    return batch


def _as_tensors(inputs: Inputs) -> dict[str, torch.Tensor]:
    return {k: torch.as_tensor(v) for k, v in inputs.items()}


def _chunk_logits(net: BackboneClassifier, inputs: dict[str, torch.Tensor], batch_size: int, device):
    n = len(next(iter(inputs.values())))
    for start in range(0, n, batch_size):
        batch = {k: v.to(device, non_blocking=True) for k, v in _rows(inputs, slice(start, start + batch_size)).items()}
        yield net(batch).float()


class _Batches:
    """Shuffled minibatches ``(inputs, target)``, reshuffled every epoch from a seeded generator."""

    def __init__(self, inputs: Inputs, targets: np.ndarray, batch_size: int, seed: int):
        self.inputs = _as_tensors(inputs)
        self.targets = torch.as_tensor(targets, dtype=torch.float32)
        self.batch_size, self.n = batch_size, len(self.targets)
        self.generator = torch.Generator().manual_seed(seed)

    def __iter__(self):
        order = torch.randperm(self.n, generator=self.generator)
        for start in range(0, self.n, self.batch_size):
            idx = order[start : start + self.batch_size]
            yield _rows(self.inputs, idx), self.targets[idx]

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)


def optimizer_steps(n: int, spec: FinetuneSpec) -> int:
    """Optimiser steps of a fit on ``n`` points: the last short accumulation of an epoch steps too."""
    batches = -(-n // spec.batch_size)
    return spec.epochs * -(-batches // spec.grad_accum)


class FinetuneModule(L.LightningModule):
    """Trains a :class:`BackboneClassifier` on soft targets with AdamW.

    ``loss_fn`` (see :data:`models.classifier.LossFn`) sees the optimiser step and
    ``total_steps`` (optimiser steps, not batches, under gradient accumulation).
    ``val_data`` (inputs, soft targets) is scored after every epoch; the per-epoch figures
    go to ``history``, the latest validation loss to ``val_loss``.
    """

    def __init__(
        self,
        net: BackboneClassifier,
        lr: float,
        loss_fn: LossFn = plain_soft_cross_entropy,
        total_steps: int = 1,
        val_batch_size: int = 64,
        weight_decay: float = 0.01,
        lr_schedule: str = "constant",
    ):
        super().__init__()
        self.net, self.lr, self.loss_fn, self.total_steps = net, lr, loss_fn, total_steps
        self.val_batch_size, self.weight_decay, self.lr_schedule = val_batch_size, weight_decay, lr_schedule
        self.val_data: tuple[dict[str, torch.Tensor], torch.Tensor] | None = None
        self.val_loss: float | None = None
        self.history: list[dict[str, float]] = []
        self._losses: list[torch.Tensor] = []

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.net(batch)

    def on_train_epoch_start(self):
        self._losses = []

    def training_step(self, batch, batch_idx):
        inputs, target = batch
        loss = self.loss_fn(self.net(inputs), target, None, self.global_step, self.total_steps)
        self._losses.append(loss.detach())  # read once per epoch: no device sync per step
        return loss

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        if self.val_data is None:
            return {}
        inputs, target = self.val_data
        self.net.eval()
        with self.trainer.precision_plugin.forward_context():
            logits = torch.cat(list(_chunk_logits(self.net, inputs, self.val_batch_size, self.device)))
        self.net.train()
        target = target.to(logits.device)
        self.val_loss = float(soft_cross_entropy(logits, target))
        return {"val_loss": self.val_loss, "val_acc": float((logits.argmax(-1) == target.argmax(-1)).float().mean())}

    def on_train_batch_end(self, outputs, batch, batch_idx):
        # Scoring after the epoch's last batch, before the epoch-end hooks, lets the
        # best-epoch callback see this epoch's validation loss.
        if batch_idx + 1 < self.trainer.num_training_batches:
            return
        train_loss = float(torch.stack(self._losses).mean())
        self.history.append({"epoch": self.current_epoch, "train_loss": train_loss, **self.validate()})

    def configure_optimizers(self):
        params = [p for p in self.net.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        if self.lr_schedule == "constant":
            return optimizer
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(self.total_steps, 1))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


class _KeepBest(L.Callback):
    """Keeps the trainable weights of the epoch with the lowest validation loss, in CPU memory
    (a second copy of a large model on the accelerator would cost its memory); stops after
    ``patience`` epochs without a relative improvement of ``min_delta``. Without validation
    data it keeps the last epoch. Epochs before ``start_epoch`` (a scheduled loss still
    warming up, see :func:`models.training.first_settled_epoch`) are neither kept nor counted."""

    def __init__(self, patience: int, min_delta: float = 1e-4, start_epoch: int = 0):
        self.patience, self.min_delta, self.start_epoch = patience, min_delta, start_epoch
        self.best_loss, self.best_epoch = float("inf"), -1
        self.best_state: dict[str, torch.Tensor] | None = None

    def on_train_epoch_end(self, trainer, module):
        epoch = trainer.current_epoch
        if module.val_loss is None or epoch < self.start_epoch:
            return
        if module.val_loss < self.best_loss * (1 - self.min_delta):
            self.best_loss, self.best_epoch = module.val_loss, epoch
            self.best_state = {k: v.to("cpu", copy=True) for k, v in module.net.trainable_state().items()}
        if epoch - self.best_epoch >= self.patience:
            trainer.should_stop = True


@dataclass
class FinetuneResult:
    model: BackboneClassifier
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1  # -1 where no validation chose one (the last epoch is kept)
    precision: str = "32-true"  # what ``spec.precision`` resolved to


def finetune_classifier(
    backbone: str | Path,
    spec: FinetuneSpec,
    inputs: Inputs,
    targets: np.ndarray,
    val_inputs: Inputs | None,
    val_targets: np.ndarray | None,
    seed: int,
    loss_fn: LossFn | None = None,
) -> FinetuneResult:
    """Fine-tunes ``backbone`` (a name as :func:`models.backbone.resolve_backbone` reads it)
    plus a head on soft ``targets`` ``(n, k)``.

    With validation data the epoch of lowest validation loss (soft cross-entropy against
    ``val_targets``) is kept and training stops after ``spec.patience`` epochs without
    improvement; without, all epochs run and the last is kept. The model comes back on the
    CPU (Lightning's teardown); :func:`finetune_predict` moves it where it predicts.
    """
    L.seed_everything(seed, verbose=False)
    net = BackboneClassifier(backbone, targets.shape[-1], spec)
    loader = _Batches(inputs, targets, spec.batch_size, seed)
    total_steps = optimizer_steps(len(targets), spec)
    module = FinetuneModule(
        net, spec.lr, loss_fn or plain_soft_cross_entropy, total_steps=total_steps,
        val_batch_size=max(64, spec.batch_size), weight_decay=spec.weight_decay, lr_schedule=spec.lr_schedule,
    )
    if val_inputs is not None:
        module.val_data = (_as_tensors(val_inputs), torch.as_tensor(val_targets, dtype=torch.float32))
    steps_per_epoch = -(-len(loader) // spec.grad_accum)
    best = _KeepBest(spec.patience, start_epoch=first_settled_epoch(loss_fn, total_steps, steps_per_epoch, spec.epochs))
    precision = resolve_precision(spec.precision, spec.accelerator)
    # Some CUDA kernels (e.g. embedding backward) have no deterministic version: warn, not fail.
    trainer = make_trainer(
        spec.epochs, [best], spec.accelerator, precision=precision, deterministic="warn",
        accumulate_grad_batches=spec.grad_accum,
    )
    trainer.fit(module, train_dataloaders=loader)
    if best.best_state is not None:
        net.load_trainable_state(best.best_state)
    return FinetuneResult(model=net.eval(), history=module.history, best_epoch=best.best_epoch, precision=precision)


def _autocast(model: BackboneClassifier, device: torch.device):
    """bf16 autocast on a GPU where the model trained in bf16 mixed precision, as it validated."""
    precision = resolve_precision(model.spec.precision, model.spec.accelerator)
    if device.type == "cuda" and precision == "bf16-mixed":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if device.type == "cuda" and precision == "16-mixed":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


@torch.no_grad()
def finetune_predict(
    model: BackboneClassifier, inputs: Inputs, batch_size: int = 64, device: str | None = None,
) -> np.ndarray:
    """Class probabilities ``(n, k)`` of encoded ``inputs``, computed on ``device`` (default:
    a GPU if there is one); the model goes back to where it was."""
    model.eval()
    before = next(model.parameters()).device
    target = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model.to(target)
    try:
        with _autocast(model, target):
            chunks = _chunk_logits(model, _as_tensors(inputs), batch_size, target)
            probs = [torch.softmax(logits, dim=-1).cpu() for logits in chunks]
    finally:
        model.to(before)
    return torch.cat(probs).numpy() if probs else np.zeros((0, model.n_classes), dtype=np.float32)


def predict_soft(
    model: BackboneClassifier, texts=None, images=None, batch_size: int = 64, device: str | None = None,
) -> np.ndarray:
    """Soft predictions ``(n, k)`` for any raw texts or images, encoded as the model was
    trained (its spec's ``max_length`` and ``truncation_side``); every input gets one, so a
    text too long is cut, never dropped."""
    encoded = encode_inputs(
        model.backbone_name, texts=texts, images=images, max_length=model.spec.max_length,
        truncation_side=model.spec.truncation_side,
    )
    return finetune_predict(model, encoded, batch_size, device)


def _image_list(images, channels: int) -> tuple[list, dict]:
    """Images in the form the processor takes, with as many channels as it normalises."""
    if isinstance(images, np.ndarray):
        arr = images[..., None] if images.ndim == 3 else images
        if arr.shape[-1] == 1 and channels == 3:
            arr = np.repeat(arr, 3, axis=-1)
        # The processor divides by 255 unconditionally; float images are taken to be in [0, 1].
        return list(arr), {"input_data_format": "channels_last", "do_rescale": arr.dtype == np.uint8}
    return [image.convert("RGB" if channels == 3 else "L") for image in images], {}


def encode_inputs(
    backbone: str | Path, texts=None, images=None, max_length: int = 128, truncation_side: str = "right",
) -> dict[str, np.ndarray]:
    """Model inputs for ``texts`` (int64 ``input_ids``, ``attention_mask``, padded to the
    longest text, at most ``max_length`` tokens, a longer text cut on ``truncation_side``;
    a tokenizer without a pad token borrows one, see :func:`models.backbone.ensure_pad_token`)
    or ``images`` (float32 ``pixel_values``; an array ``(n, H, W)`` or ``(n, H, W, C)``,
    uint8 or float in [0, 1], or PIL images)."""
    from transformers import AutoImageProcessor

    if (texts is None) == (images is None):
        raise ValueError("encode_inputs takes exactly one of texts or images")
    if texts is not None:
        tokenizer = load_tokenizer(str(backbone), truncation_side)
        encoded = tokenizer(
            list(texts), padding="longest", truncation=True, max_length=max_length, return_tensors="np"
        )
        return {k: np.asarray(encoded[k], dtype=np.int64) for k in ("input_ids", "attention_mask")}
    processor = load_pretrained(AutoImageProcessor, str(backbone), "image processor")
    mean = getattr(processor, "image_mean", None)
    channels = len(mean) if isinstance(mean, (list, tuple)) else 3
    image_list, options = _image_list(images, channels)
    encoded = processor(images=image_list, return_tensors="np", **options)
    return {"pixel_values": np.asarray(encoded["pixel_values"], dtype=np.float32)}


def long_texts(backbone: str | Path, texts, max_length: int) -> np.ndarray:
    """Which texts Burns et al.'s rule drops: those of ``max_length`` tokens or more (their
    code keeps ``len(input_ids) < max_ctx``), special tokens included."""
    return token_counts(load_tokenizer(str(backbone)), list(texts)) >= max_length


def save_finetuned(result_or_model: FinetuneResult | BackboneClassifier, path: str | Path) -> None:
    """Writes ``weights.safetensors`` (the trainable state only) and ``finetune.json`` into
    the folder ``path``; the frozen backbone is read again by its name on loading."""
    model = result_or_model.model if isinstance(result_or_model, FinetuneResult) else result_or_model
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    save_file({k: v.cpu().contiguous() for k, v in model.trainable_state().items()}, str(path / "weights.safetensors"))
    meta = {"backbone": model.backbone_name, "n_classes": model.n_classes, "spec": asdict(model.spec)}
    (path / "finetune.json").write_text(json.dumps(meta, indent=2))


def load_finetuned(path: str | Path, backbone: str | Path | None = None) -> BackboneClassifier:
    """The model :func:`save_finetuned` wrote; ``backbone`` overrides the saved name (the
    backbone may live elsewhere on this machine)."""
    path = Path(path)
    meta = json.loads((path / "finetune.json").read_text())
    known = {f.name for f in fields(FinetuneSpec)}
    spec = FinetuneSpec(**{k: v for k, v in meta["spec"].items() if k in known})
    saved = meta.get("backbone", meta.get("backbone_path"))
    model = BackboneClassifier(backbone or saved, meta["n_classes"], spec)
    model.load_trainable_state(load_file(str(path / "weights.safetensors")))
    return model.eval()
