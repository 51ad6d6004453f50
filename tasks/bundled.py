"""Bundled real datasets: built from data that ships inside installed packages, no download.

Each builder returns a ``datasets.Dataset``; ``flows/presets/NAME.yaml`` holds the source
spec and the weak / strong models that give the set a real weak-to-strong gap.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

BUILDERS: dict[str, Callable] = {}


def bundled(name: str):
    def register(fn):
        BUILDERS[name] = fn
        return fn

    return register


def load_bundled(name: str):
    from tasks.real_data import DataError

    if name not in BUILDERS:
        raise DataError(f"source.bundled: unknown bundled dataset '{name}' (bundled: {', '.join(sorted(BUILDERS))})")
    return BUILDERS[name]()


@bundled("digits")
def digits():
    """scikit-learn's handwritten digits: 1,797 grey 8×8 images (values 0–16), 10 classes."""
    from datasets import Array2D, ClassLabel, Dataset, Features
    from sklearn.datasets import load_digits

    d = load_digits()
    features = Features({"image": Array2D((8, 8), "float32"), "label": ClassLabel(names=[str(k) for k in range(10)])})
    return Dataset.from_dict({"image": d.images.astype(np.float32), "label": d.target}, features=features)
