"""Reading stage inputs back from disk: dataset splits and arrays, without pickle."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tasks.manifest import Manifest

SPLITS = ("weak_train", "w2s_train", "val", "test")


@dataclass(frozen=True)
class Split:
    """One split of one or more sources, as arrays; ``source`` indexes the source of each row."""

    x: np.ndarray
    x_weak: np.ndarray
    label: np.ndarray
    group: np.ndarray | None
    source: np.ndarray
    n_classes: int


def column_array(table, name: str) -> np.ndarray:
    """One Arrow column as a NumPy array; fixed-length lists become a 2-D array.

    Straight from Arrow's buffers: going through ``datasets``' row formatting is ~200×
    slower on these tables.
    """
    column = table.column(name).combine_chunks()
    if hasattr(column, "flatten") and hasattr(column.type, "list_size"):
        return column.flatten().to_numpy(zero_copy_only=False).reshape(len(column), column.type.list_size)
    return column.to_numpy(zero_copy_only=False)


def arrow_dataset(columns: dict[str, np.ndarray], features):
    """A ``datasets.Dataset`` built straight from NumPy columns (2-D arrays become fixed-length
    lists): ``Dataset.from_dict`` converts row by row and is ~40× slower on a study's grid."""
    import pyarrow as pa
    from datasets import Dataset
    from datasets.table import InMemoryTable

    arrays = {}
    for name, values in columns.items():
        values = np.ascontiguousarray(values)
        if values.ndim == 2:
            arrays[name] = pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])
        else:
            arrays[name] = pa.array(values)
    return Dataset(InMemoryTable(pa.table(arrays).cast(features.arrow_schema)))


def save_dataset_dict(splits: dict, path) -> None:
    import datasets

    datasets.disable_progress_bars()  # a stage's own timing is reported; per-split bars are noise
    datasets.DatasetDict(splits).save_to_disk(str(path))


def save_array(out_dir, name: str, array: np.ndarray) -> None:
    np.save(out_dir / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)


def load_array(manifest: Manifest, name: str) -> np.ndarray:
    return np.load(manifest.file(f"{name}.npy"), allow_pickle=False)


GRID_SPLITS = ("weak_train", "w2s_train", "test")


@dataclass(frozen=True)
class GridSplit:
    """One split of a study's grid: every cell's rows, tagged by ``cell`` and by ``source`` within it."""

    x: np.ndarray
    label: np.ndarray
    group: np.ndarray
    cell: np.ndarray
    source: np.ndarray
    d_easy: int

    @property
    def x_weak(self) -> np.ndarray:
        return self.x[:, : self.d_easy]


def load_grid_split(data: Manifest, split: str, d_easy: int) -> GridSplit:
    from datasets import load_from_disk

    table = load_from_disk(str(data.dir))[split].with_format("arrow")[:]
    col = {name: column_array(table, name) for name in ("features", "label", "group", "cell", "source")}
    return GridSplit(
        x=col["features"].astype(np.float32),
        label=col["label"].astype(np.int64),
        group=col["group"].astype(np.int64),
        cell=col["cell"].astype(np.int64),
        source=col["source"].astype(np.int64),
        d_easy=d_easy,
    )
