"""Splitting a real dataset's rows: stratified by class, from a seeded generator."""

from __future__ import annotations

import numpy as np


def stratified_split(labels: np.ndarray, shares: dict[str, float], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Row indices of each split, every class divided in proportion to ``shares``.

    Each class's rows are shuffled and cut at the rounded cumulative shares, so a split's
    class balance matches the dataset's up to one row per class; each split's rows are then
    shuffled, so that no consumer sees them grouped by class.
    """
    names = list(shares)
    total = float(sum(shares.values()))
    cuts = np.cumsum([shares[n] / total for n in names])
    parts: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for c in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == c))
        bounds = np.concatenate([[0], np.round(cuts * len(rows)).astype(np.int64)])
        for n, lo, hi in zip(names, bounds[:-1], bounds[1:]):
            parts[n].append(rows[lo:hi])
    return {n: rng.permutation(np.concatenate(parts[n])) for n in names}


def split_rows(
    label: np.ndarray, fixed_test: np.ndarray | None, shares: dict[str, float], balance: bool, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Row indices of each split. Pooled rows are divided among all four splits in proportion
    to ``shares``, stratified by class. With a fixed test split (a benchmark's hub test split)
    those rows are the test split, whole, and the others are divided among weak_train,
    w2s_train and val in proportion to their shares; ``balance`` then undersamples each part
    on its own, so that no test row moves into training or back."""
    if fixed_test is None:
        keep = undersample(label, rng) if balance else np.arange(len(label))
        return {name: keep[part] for name, part in stratified_split(label[keep], shares, rng).items()}
    pool, test = np.flatnonzero(~fixed_test), np.flatnonzero(fixed_test)
    if balance:
        pool, test = pool[undersample(label[pool], rng)], test[undersample(label[test], rng)]
    train_shares = {name: share for name, share in shares.items() if name != "test"}
    index = {name: pool[part] for name, part in stratified_split(label[pool], train_shares, rng).items()}
    return {**index, "test": rng.permutation(test)}


def undersample(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of a class-balanced subset: every class cut to the rarest one's count."""
    classes, counts = np.unique(labels, return_counts=True)
    keep = [rng.choice(np.flatnonzero(labels == c), size=counts.min(), replace=False) for c in classes]
    return np.sort(np.concatenate(keep))


def class_counts(labels: np.ndarray, n_classes: int) -> list[int]:
    return np.bincount(labels, minlength=n_classes).tolist()
