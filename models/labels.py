"""Label arrays as plain numpy: one-hot targets and hardened soft labels."""

from __future__ import annotations

import numpy as np


def one_hot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    return np.eye(n_classes, dtype=np.float32)[labels]


def hard_labels(probs: np.ndarray) -> np.ndarray:
    """One-hot of each row's most likely class (ties go to the lowest class index)."""
    return one_hot(probs.argmax(axis=1), probs.shape[1])
