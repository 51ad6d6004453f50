"""Weak views of real inputs: what a deliberately limited model gets to see.

A weak model is weak by its view as much as by its capacity: bag-of-words instead of a
pretrained encoder for text, a pooled (lower-resolution) image, a few of a table's columns.
"""

from __future__ import annotations

import re
import zlib

import numpy as np

_WORD = re.compile(r"\w+")


def hashed_bag_of_words(texts: list[str], buckets: int) -> np.ndarray:
    """Word counts hashed into ``buckets`` columns, log-scaled and unit-normalised.

    Hashing needs no vocabulary, so every source and split maps to the same columns; CRC32
    (not Python's salted ``hash``) makes the columns identical across processes.
    """
    out = np.zeros((len(texts), buckets), dtype=np.float32)
    for i, text in enumerate(texts):
        for word in _WORD.findall(text.lower()):
            out[i, zlib.crc32(word.encode()) % buckets] += 1.0
    np.log1p(out, out=out)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norms, 1e-12)


def average_pool(images: np.ndarray, factor: int) -> np.ndarray:
    """``(n, H, W)`` images averaged over ``factor`` × ``factor`` blocks (edges cropped), flattened."""
    n, h, w = images.shape
    h2, w2 = h // factor, w // factor
    if h2 == 0 or w2 == 0:
        raise ValueError(f"cannot pool {h}x{w} images by {factor}")
    blocks = images[:, : h2 * factor, : w2 * factor].reshape(n, h2, factor, w2, factor)
    return blocks.mean(axis=(2, 4)).reshape(n, h2 * w2).astype(np.float32)


def add_noise(x: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    if std <= 0:
        return x
    return (x + rng.normal(0.0, std, size=x.shape)).astype(np.float32)
