"""One hub split of a benchmark task turned into texts and binary labels, as its paper did.

Burns et al. (``shuffle=False``): the split's rows in the hub's order, formatted with one
``random.Random(seed)`` stream, the first ``cap`` kept. EleutherAI (``shuffle=True``,
``balance=True``): the rows permuted with the seed (``datasets``' ``Dataset.shuffle(seed)``
is this same NumPy permutation), formatted with one ``random.Random(seed)`` stream, empty
texts dropped, the majority class undersampled to the minority's count, the first ``cap``
kept. Each split starts its own stream from the seed, as both codes do.

One difference from both: a text that is only whitespace counts as empty and is dropped
(EleutherAI drops only ``""``; Burns et al. drop none), and every dropped text is counted.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np


@dataclass(frozen=True)
class FormattedSplit:
    """Texts, labels, and each example's row in the hub split; ``read`` rows were formatted,
    ``empty`` of them gave an empty text and were dropped."""

    text: list[str]
    label: np.ndarray
    row: np.ndarray
    read: int
    empty: int


def split_order(n: int, seed: int, shuffle: bool) -> np.ndarray:
    """The order rows are formatted in: the hub's, or the seeded permutation
    ``Dataset.shuffle(seed=seed)`` applies."""
    return np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)


def format_split(
    rows: Sequence[Mapping[str, Any]],
    formatter: Callable[[Mapping[str, Any], random.Random], tuple[str, int]],
    seed: int,
    shuffle: bool = False,
    balance: bool = False,
    cap: int | None = None,
) -> FormattedSplit:
    """``rows`` (anything indexable that returns a hub row as a mapping) formatted one by one.

    Without balancing, formatting stops once ``cap`` texts are kept, so a split of millions
    of rows is read only as far as it is used."""
    rng = random.Random(seed)
    texts, labels, kept = [], [], []
    read = empty = 0
    for i in split_order(len(rows), seed, shuffle):
        if cap is not None and not balance and len(texts) == cap:
            break
        text, label = formatter(rows[int(i)], rng)
        read += 1
        if not isinstance(text, str) or not text.strip():
            empty += 1
            continue
        texts.append(text)
        labels.append(int(label))
        kept.append(int(i))
    label = np.asarray(labels, dtype=np.int64)
    row = np.asarray(kept, dtype=np.int64)
    if balance and len(label):
        order = balanced_order(label, seed)
        texts, label, row = [texts[i] for i in order], label[order], row[order]
    if cap is not None:
        texts, label, row = texts[:cap], label[:cap], row[:cap]
    return FormattedSplit(text=texts, label=label, row=row, read=read, empty=empty)


def balanced_order(label: np.ndarray, seed: int) -> np.ndarray:
    """Positions of a 50/50 subset, in EleutherAI's order: every minority-class example in
    its current order, then the majority class permuted with the seed and cut to the
    minority's count, the whole permuted once more with the seed. On a tie the class of the
    first example counts as the majority. One class only: nothing to balance, all kept."""
    classes = list(dict.fromkeys(label.tolist()))  # in order of first appearance
    if len(classes) != 2:
        return np.arange(len(label))
    counts = {c: int(np.sum(label == c)) for c in classes}
    majority = max(classes, key=lambda c: counts[c])
    minority = classes[1] if majority == classes[0] else classes[0]
    small = np.flatnonzero(label == minority)
    large = np.flatnonzero(label == majority)
    large = large[np.random.default_rng(seed).permutation(len(large))][: len(small)]
    both = np.concatenate([small, large])
    return both[np.random.default_rng(seed).permutation(len(both))]
