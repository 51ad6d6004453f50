"""A multi-class task whose classes form a hierarchy of blocks (for co-supervision).

Class means are sums over the levels of a binary tree: classes ``k`` and ``k'`` share the
component of every tree node above both, so neighbouring classes (one block) lie close and
blocks lie far apart, with the spread shrinking geometrically from the coarsest split
(``block_spread``) to the finest (``class_spread``). Points are ``N(mean_k, noise·I)``.
The weak view is the first ``d_weak`` coordinates, blurred by independent noise.
"""

from __future__ import annotations

import numpy as np

from models.synthetic import Mixture


def tree_node(k: np.ndarray, level: int, n_classes: int) -> np.ndarray:
    """The node of class ``k`` at tree ``level`` (1 = the two halves; ``2**level`` nodes)."""
    return (np.asarray(k) * 2**level) // n_classes


def class_means(
    rng: np.random.Generator, n_classes: int, d: int, block_spread: float, class_spread: float
) -> np.ndarray:
    """``(n_classes, d)`` means: one random Gaussian direction per tree node, scaled per level."""
    depth = max(1, int(np.ceil(np.log2(n_classes))))
    means = np.zeros((n_classes, d))
    classes = np.arange(n_classes)
    for level in range(1, depth + 1):
        share = (level - 1) / (depth - 1) if depth > 1 else 0.0
        scale = block_spread * (class_spread / block_spread) ** share
        directions = rng.normal(size=(2**level, d)) / np.sqrt(d)
        means += scale * directions[tree_node(classes, level, n_classes)]
    return means


def sample_class_blocks(
    rng: np.random.Generator, means: np.ndarray, n: int, noise: float, d_weak: int, weak_noise: float = 0.0
) -> Mixture:
    """``n`` points with uniformly drawn classes. There is no easy / hard / overlap ground
    truth here, so ``group`` is None."""
    n_classes, d = means.shape
    if not 0 < d_weak <= d:
        raise ValueError(f"d_weak must lie in (0, {d}], got {d_weak}")
    label = rng.integers(0, n_classes, size=n).astype(np.int64)
    x = (means[label] + rng.normal(0.0, np.sqrt(noise), size=(n, d))).astype(np.float32)
    # The weak view's own noise is independent of the strong view: its errors look like
    # label noise from the strong side, which a strong student can average out.
    x_weak = x[:, :d_weak] + rng.normal(0.0, np.sqrt(weak_noise), size=(n, d_weak)).astype(np.float32)
    return Mixture(x=x, x_weak=x_weak, label=label, group=None)
