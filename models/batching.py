"""Many small problems as one padded batch: rows tagged by problem become ``(R, n_max, ...)``.

Thousands of tiny fits (seeds × grid points) cost mostly per-fit overhead; stacked along a
replica axis, with zero-weight padding for problems that have fewer rows, they train as
one vectorised model.
"""

from __future__ import annotations

import numpy as np


class Padding:
    """The layout of rows tagged ``ids`` (values in ``0 .. n_groups-1``) in a padded batch.

    ``pad`` and ``unpad`` work on a range of groups at a time, padded to the largest group
    of that range, so a large batch can be processed in chunks without ever materialising
    all of it.
    """

    def __init__(self, ids: np.ndarray, n_groups: int):
        ids = np.asarray(ids, dtype=np.int64)
        self.n_groups = n_groups
        self.order = np.argsort(ids, kind="stable")  # rows grouped by id, original order within
        self.counts = np.bincount(ids, minlength=n_groups)[:n_groups]
        self.starts = np.concatenate([[0], np.cumsum(self.counts)])
        self.sorted_ids = ids[self.order]
        self.position = np.arange(len(ids)) - self.starts[self.sorted_ids]

    def _rows(self, start: int, stop: int | None):
        stop = self.n_groups if stop is None else min(stop, self.n_groups)
        lo, hi = self.starts[start], self.starts[stop]
        return stop - start, (self.sorted_ids[lo:hi] - start, self.position[lo:hi]), self.order[lo:hi]

    def width_of(self, start: int, stop: int) -> int:
        """Padded length of groups ``start .. stop-1``: their largest count."""
        return int(self.counts[start:stop].max(initial=0))

    def mask(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """``(groups, width)`` float weights: 1 for a real row, 0 for padding."""
        stop = self.n_groups if stop is None else min(stop, self.n_groups)
        width = self.width_of(start, stop)
        return (np.arange(width)[None, :] < self.counts[start:stop, None]).astype(np.float32)

    def pad(self, values: np.ndarray, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Rows of groups ``start .. stop-1`` as ``(groups, width, ...)``, zero where padded."""
        n, slot, rows = self._rows(start, stop)
        out = np.zeros((n, self.width_of(start, start + n)) + values.shape[1:], dtype=values.dtype)
        out[slot] = values[rows]
        return out

    def unpad(self, padded: np.ndarray, into: np.ndarray, start: int = 0, stop: int | None = None) -> None:
        """The inverse of :meth:`pad`: write each real row back to its place in ``into``."""
        _, slot, rows = self._rows(start, stop)
        into[rows] = padded[slot]
