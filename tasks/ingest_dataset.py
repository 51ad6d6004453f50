"""Stage ``ingest_dataset``: a real dataset's selected rows, read once, validated, saved.

Independent of the run's seed, so that the expensive stage after it, ``embed``, runs once
per dataset and backbone however many seeds are run; the seeded split is ``make_splits``'
job. What is random here (a benchmark task's coin flips and balancing, a ``max_rows``
subset) is drawn from the data's own seed, ``source.seed``.
"""

from __future__ import annotations

import numpy as np

from tasks.artifacts import DatasetRows
from tasks.benchmark_data import read_benchmark
from tasks.real_data import Rows, load_table, read_rows
from tasks.specs import DatasetSource
from tasks.stage import StageOutput, cached_stage


@cached_stage(DatasetRows)
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
    DatasetRows.write(out, rows, source=source.name, data_fingerprint=data_fingerprint, **facts)


def _subset(rows: Rows, keep: np.ndarray) -> Rows:
    return Rows(
        label=rows.label[keep], label_names=rows.label_names, row=rows.row[keep],
        text=[rows.text[i] for i in keep] if rows.text is not None else None,
        images=rows.images[keep] if rows.images is not None else None,
        features=rows.features[keep] if rows.features is not None else None,
        feature_names=rows.feature_names,
        test=rows.test[keep] if rows.test is not None else None,
    )
