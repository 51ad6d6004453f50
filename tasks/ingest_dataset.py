"""Stage ``ingest_dataset``: a real dataset's selected rows, read once, validated, saved.

Independent of the run's seed, so that the expensive stage after it, ``embed``, runs once
per dataset and backbone however many seeds are run; the seeded split is ``make_splits``'
job. What is random here (a benchmark task's coin flips and balancing, a ``max_rows``
subset) is drawn from the data's own seed, ``source.seed``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from models.splits import class_counts
from tasks.data import arrow_dataset
from tasks.benchmark_data import read_benchmark
from tasks.real_data import Rows, load_table, read_rows
from tasks.stage import StageOutput, cached_stage

if TYPE_CHECKING:
    from flows.config import DatasetSource


@cached_stage
def ingest_dataset(out: StageOutput, source: DatasetSource, data_fingerprint: str) -> None:
    """``data_fingerprint`` (tasks.real_data.resolve_source) ties the cache to the data's
    content; a hub source arrives with its revision pinned to the commit that names."""
    facts = {}
    if source.benchmark:
        rows, facts = read_benchmark(source)
    else:
        rows = read_rows(load_table(source), source)
        if source.max_rows and source.max_rows < len(rows.label):
            keep = np.sort(np.random.default_rng(source.seed).choice(len(rows.label), source.max_rows, replace=False))
            rows = _subset(rows, keep)
    save_rows(rows, out.dir)
    out.facts.update(
        source=source.name,
        n_rows=len(rows.label),
        n_classes=len(rows.label_names),
        label_names=rows.label_names,
        class_counts=class_counts(rows.label, len(rows.label_names)),
        input_kind=rows.input_kind,
        feature_names=list(rows.feature_names),
        image_shape=list(rows.images.shape[1:]) if rows.images is not None else None,
        data_fingerprint=data_fingerprint,
        **facts,
    )


def _subset(rows: Rows, keep: np.ndarray) -> Rows:
    return Rows(
        label=rows.label[keep], label_names=rows.label_names, row=rows.row[keep],
        text=[rows.text[i] for i in keep] if rows.text is not None else None,
        images=rows.images[keep] if rows.images is not None else None,
        features=rows.features[keep] if rows.features is not None else None,
        feature_names=rows.feature_names,
        test=rows.test[keep] if rows.test is not None else None,
    )


def save_rows(rows: Rows, path) -> None:
    from datasets import ClassLabel, Features, Sequence, Value

    columns = {"label": rows.label, "row": rows.row}
    features = {"label": ClassLabel(names=rows.label_names), "row": Value("int64")}
    if rows.test is not None:
        columns["fixed_test"], features["fixed_test"] = rows.test, Value("bool")
    if rows.text is not None:
        columns["text"], features["text"] = np.array(rows.text, dtype=object), Value("string")
    else:
        x = rows.features if rows.features is not None else rows.images.reshape(len(rows.label), -1)
        columns["input"], features["input"] = x, Sequence(Value("float32"), length=x.shape[1])
    arrow_dataset(columns, Features(features)).save_to_disk(str(path / "rows"))


def load_rows(manifest) -> tuple[np.ndarray, np.ndarray, list[str] | np.ndarray]:
    """Labels, row ids and the input (texts, or an ``(n, d)`` array; images flattened)."""
    from datasets import load_from_disk

    from tasks.data import column_array

    table = load_from_disk(str(manifest.file("rows"))).with_format("arrow")[:]
    inputs = table.column("text").to_pylist() if "text" in table.column_names else column_array(table, "input")
    return column_array(table, "label").astype(np.int64), column_array(table, "row"), inputs


def load_fixed_test(manifest) -> np.ndarray | None:
    """Which rows form a fixed test split (a benchmark's hub test split), or None: the rows are
    pooled and every split is drawn from them."""
    from datasets import load_from_disk

    from tasks.data import column_array

    table = load_from_disk(str(manifest.file("rows"))).with_format("arrow")[:]
    return column_array(table, "fixed_test").astype(bool) if "fixed_test" in table.column_names else None
