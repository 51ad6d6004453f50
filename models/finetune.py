"""Fine-tuning a pretrained Hugging Face encoder (text or vision) with a linear head.

The backbone is any ``transformers.AutoModel`` whose output carries ``last_hidden_state``
``(n, tokens, hidden)``: BERT / MiniLM / DistilBERT for text, ViT for images. With
``spec.lora`` the backbone stays frozen and low-rank adapters (``peft``) on its attention
projections train with the head, so a checkpoint is the small trainable part only.

Everything here trains on one device. A multi-GPU run (Lightning's ``strategy="ddp"``)
re-executes its script once per rank, which a Prefect flow running in-process cannot
host: launch such a run as its own process (``torchrun --nproc_per_node=N script.py``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import lightning as L
import numpy as np
import torch
from peft import LoraConfig, inject_adapter_in_model
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoImageProcessor, AutoModel, AutoTokenizer
from transformers.utils import logging as hf_logging

from models.backbone import load_pretrained, pool
from models.classifier import LossFn, plain_soft_cross_entropy
from models.losses import soft_cross_entropy
from models.training import first_settled_epoch, make_trainer

# transformers' weight-loading bars repeat on every fit (models.training quiets Lightning).
hf_logging.disable_progress_bar()

Inputs = dict[str, np.ndarray]

# Backbone keyword arguments an encoded batch may carry; anything else is not for the model.
_MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "pixel_values")

# Query/value projection names: BERT / RoBERTa / MiniLM; ViT and decoder families (ViT too
# in transformers 5); DeBERTa; DistilBERT; T5. Adapters on q and v only are the LoRA
# paper's choice and the usual default.
_LORA_PAIRS = (
    ("query", "value"), ("q_proj", "v_proj"), ("query_proj", "value_proj"), ("q_lin", "v_lin"), ("q", "v"),
)


@dataclass(frozen=True)
class FinetuneSpec:
    """How to fine-tune one backbone. ``max_length`` is for the caller's :func:`encode_inputs`;
    ``lora_*`` apply only with ``lora``; ``precision`` is Lightning's (e.g. ``"bf16-mixed"``)."""

    epochs: int = 3
    lr: float = 2e-5
    batch_size: int = 16
    max_length: int = 128
    lora: bool = False
    lora_rank: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    patience: int = 2
    pooling: str = "mean"  # "mean" over real tokens, or "cls" (the first token)
    accelerator: str = "auto"
    precision: str = "32-true"


def lora_targets(model: nn.Module) -> list[str]:
    """Names of the Linear layers that get adapters: the query/value pair when the model has
    one, otherwise every Linear inside an attention block (by full name, since leaf names
    such as ``dense`` recur outside attention)."""
    linear = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    leaves = {name.rsplit(".", 1)[-1] for name in linear}
    for pair in _LORA_PAIRS:
        if set(pair) <= leaves:
            return list(pair)
    in_attention = [name for name in linear if "attn" in name.lower() or "attention" in name.lower()]
    if not in_attention:
        raise ValueError(f"no attention projections found for LoRA in {type(model).__name__}")
    return in_attention


class BackboneClassifier(nn.Module):
    """A pretrained encoder, pooled (mean over the attention mask, or the first token), then a
    linear head. ``forward`` takes an encoded batch (see :func:`encode_inputs`)."""

    def __init__(self, backbone_path: str | Path, n_classes: int, spec: FinetuneSpec = FinetuneSpec()):
        super().__init__()
        if spec.pooling not in ("mean", "cls"):
            raise ValueError(f"unknown pooling {spec.pooling!r}: use 'mean' or 'cls'")
        self.backbone_path, self.n_classes, self.spec = str(backbone_path), n_classes, spec
        backbone = load_pretrained(AutoModel, str(backbone_path), "weights")
        if spec.lora:
            config = LoraConfig(
                r=spec.lora_rank, lora_alpha=spec.lora_alpha, lora_dropout=spec.lora_dropout,
                target_modules=lora_targets(backbone),
            )
            # Unlike get_peft_model, this keeps the plain model class (no wrapper, no
            # renamed keys) and freezes every backbone weight that is not an adapter.
            backbone = inject_adapter_in_model(config, backbone)
        self.backbone = backbone
        self.head = nn.Linear(backbone.config.hidden_size, n_classes)
        self.train()  # from_pretrained hands the backbone over in eval mode, dropout off

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        dtype = self.head.weight.dtype  # a half-precision model needs half-precision pixels
        inputs = {k: v.to(dtype) if v.is_floating_point() else v for k, v in batch.items() if k in _MODEL_INPUTS}
        hidden = self.backbone(**inputs).last_hidden_state
        return self.head(pool(hidden, inputs.get("attention_mask"), self.spec.pooling))

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
        batch = {k: v.to(device) for k, v in _rows(inputs, slice(start, start + batch_size)).items()}
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


class FinetuneModule(L.LightningModule):
    """Trains a :class:`BackboneClassifier` on soft targets with AdamW.

    ``loss_fn`` (see :data:`models.classifier.LossFn`) sees the optimiser step and
    ``total_steps``. ``val_data`` (inputs, soft targets) is scored after every epoch; the
    per-epoch figures go to ``history``, the latest validation loss to ``val_loss``.
    """

    def __init__(
        self,
        net: BackboneClassifier,
        lr: float,
        loss_fn: LossFn = plain_soft_cross_entropy,
        total_steps: int = 1,
        val_batch_size: int = 64,
    ):
        super().__init__()
        self.net, self.lr, self.loss_fn, self.total_steps = net, lr, loss_fn, total_steps
        self.val_batch_size = val_batch_size
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
        return torch.optim.AdamW([p for p in self.net.parameters() if p.requires_grad], lr=self.lr)


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


def finetune_classifier(
    backbone_path: str | Path,
    spec: FinetuneSpec,
    inputs: Inputs,
    targets: np.ndarray,
    val_inputs: Inputs | None,
    val_targets: np.ndarray | None,
    seed: int,
    loss_fn: LossFn | None = None,
) -> FinetuneResult:
    """Fine-tunes ``backbone_path`` plus a head on soft ``targets`` ``(n, k)``.

    With validation data the epoch of lowest validation loss (soft cross-entropy against
    ``val_targets``) is kept and training stops after ``spec.patience`` epochs without
    improvement; without, all epochs run and the last is kept.
    """
    L.seed_everything(seed, verbose=False)
    net = BackboneClassifier(backbone_path, targets.shape[-1], spec)
    loader = _Batches(inputs, targets, spec.batch_size, seed)
    total_steps = spec.epochs * len(loader)
    module = FinetuneModule(
        net, spec.lr, loss_fn or plain_soft_cross_entropy, total_steps=total_steps,
        val_batch_size=max(64, spec.batch_size),
    )
    if val_inputs is not None:
        module.val_data = (_as_tensors(val_inputs), torch.as_tensor(val_targets, dtype=torch.float32))
    best = _KeepBest(spec.patience, start_epoch=first_settled_epoch(loss_fn, total_steps, len(loader), spec.epochs))
    # Some CUDA kernels (e.g. embedding backward) have no deterministic version: warn, not fail.
    trainer = make_trainer(spec.epochs, [best], spec.accelerator, precision=spec.precision, deterministic="warn")
    trainer.fit(module, train_dataloaders=loader)
    if best.best_state is not None:
        net.load_trainable_state(best.best_state)
    return FinetuneResult(model=net.eval(), history=module.history, best_epoch=best.best_epoch)


@torch.no_grad()
def finetune_predict(model: BackboneClassifier, inputs: Inputs, batch_size: int = 64) -> np.ndarray:
    """Class probabilities ``(n, k)``, computed on the device the model is on."""
    model.eval()
    device = next(model.parameters()).device
    chunks = _chunk_logits(model, _as_tensors(inputs), batch_size, device)
    probs = [torch.softmax(logits, dim=-1).cpu() for logits in chunks]
    return torch.cat(probs).numpy() if probs else np.zeros((0, model.n_classes), dtype=np.float32)


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
    backbone_path: str | Path, texts=None, images=None, max_length: int = 128
) -> dict[str, np.ndarray]:
    """Model inputs for ``texts`` (int64 ``input_ids``, ``attention_mask``, padded to the
    longest text, at most ``max_length`` tokens) or ``images`` (float32 ``pixel_values``;
    an array ``(n, H, W)`` or ``(n, H, W, C)``, uint8 or float in [0, 1], or PIL images)."""
    if (texts is None) == (images is None):
        raise ValueError("encode_inputs takes exactly one of texts or images")
    if texts is not None:
        tokenizer = load_pretrained(AutoTokenizer, str(backbone_path), "tokenizer")
        encoded = tokenizer(
            list(texts), padding="longest", truncation=True, max_length=max_length, return_tensors="np"
        )
        return {k: np.asarray(encoded[k], dtype=np.int64) for k in ("input_ids", "attention_mask")}
    processor = load_pretrained(AutoImageProcessor, str(backbone_path), "image processor")
    mean = getattr(processor, "image_mean", None)
    channels = len(mean) if isinstance(mean, (list, tuple)) else 3
    image_list, options = _image_list(images, channels)
    encoded = processor(images=image_list, return_tensors="np", **options)
    return {"pixel_values": np.asarray(encoded["pixel_values"], dtype=np.float32)}


def save_finetuned(result_or_model: FinetuneResult | BackboneClassifier, path: str | Path) -> None:
    """Writes ``weights.safetensors`` (the trainable state only) and ``finetune.json`` into
    the folder ``path``; the frozen backbone is read again from its own path on loading."""
    model = result_or_model.model if isinstance(result_or_model, FinetuneResult) else result_or_model
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    save_file({k: v.cpu().contiguous() for k, v in model.trainable_state().items()}, str(path / "weights.safetensors"))
    meta = {"backbone_path": model.backbone_path, "n_classes": model.n_classes, "spec": asdict(model.spec)}
    (path / "finetune.json").write_text(json.dumps(meta, indent=2))


def load_finetuned(path: str | Path, backbone_path: str | Path | None = None) -> BackboneClassifier:
    """The model :func:`save_finetuned` wrote; ``backbone_path`` overrides the saved one
    (the backbone may live elsewhere on this machine)."""
    path = Path(path)
    meta = json.loads((path / "finetune.json").read_text())
    spec = FinetuneSpec(**meta["spec"])
    model = BackboneClassifier(backbone_path or meta["backbone_path"], meta["n_classes"], spec)
    model.load_trainable_state(load_file(str(path / "weights.safetensors")))
    return model.eval()
