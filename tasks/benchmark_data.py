"""A named benchmark task's rows: its two hub splits, from the hub or from a local copy,
formatted into texts and binary labels by the task's own protocol (models/nlp_tasks.py).

The hub's test split stays the run's test split: its rows are marked ``test`` and the
split stage never mixes them into training. Everything a user can get wrong (a copy
without the task's splits or columns, a split with one class) is one DataError line.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from models.nlp_tasks import NlpTask, task
from models.task_rows import FormattedSplit, format_split
from tasks.errors import DataError
from tasks.real_data import Rows, cache_dir, first_line, save_hint

from tasks.specs import DatasetSource

if TYPE_CHECKING:
    import datasets


LABEL_NAMES = ["false", "true"]  # label 1 is "true": the answer shown is right, the review positive, …


def read_benchmark(source: DatasetSource) -> tuple[Rows, dict]:
    """The task's train and test rows as one Rows (test rows marked), and the facts of how
    they were made: the hub's coordinates and commit, rows read, empty texts dropped."""
    spec = task(source.benchmark)
    splits = load_splits(source, spec)
    protocol = spec.protocol
    made: dict[str, FormattedSplit] = {}
    for part, name, cap in (("train", spec.train_split, source.max_rows), ("test", spec.test_split, source.max_test_rows)):
        try:
            made[part] = format_split(splits[name], spec.format, source.seed, protocol.shuffle, source.balance, cap)
        except (KeyError, ValueError, IndexError, TypeError) as e:
            columns = ", ".join(splits[name].column_names)
            raise DataError(
                f"source={spec.name}: the '{name}' split cannot be formatted as task {spec.name} reads it "
                f"({type(e).__name__}: {first_line(e)}; columns: {columns})"
            ) from None
        if not made[part].text:
            raise DataError(f"source={spec.name}: the '{name}' split has no non-empty text ({made[part].read} rows read)")
    train, test = made["train"], made["test"]
    if len(np.unique(train.label)) < 2:
        raise DataError(f"source={spec.name}: the '{spec.train_split}' split holds one class only ({len(train.label)} rows)")
    rows = Rows(
        label=np.concatenate([train.label, test.label]),
        label_names=LABEL_NAMES,
        row=np.concatenate([train.row, test.row]),
        text=train.text + test.text,
        test=np.concatenate([np.zeros(len(train.label), bool), np.ones(len(test.label), bool)]),
    )
    facts = {
        "benchmark": spec.name,
        "hub": spec.hub,
        "hub_config": spec.config,
        "revision": None if source.path else source.revision,
        "local_copy": source.path,
        "protocol": protocol.name,
        "hub_splits": {"train": spec.train_split, "test": spec.test_split},
        "rows_read": {"train": train.read, "test": test.read},
        "empty_dropped": {"train": train.empty, "test": test.empty},
        "rows_kept": {"train": len(train.text), "test": len(test.text)},
        "balanced_at_ingest": source.balance,
        "data_seed": source.seed,
    }
    return rows, facts


def load_splits(source: DatasetSource, spec: NlpTask) -> dict[str, datasets.Dataset]:
    """The task's two hub splits, by their hub names: from ``source.path`` (a folder saved by
    ``datasets``, one saved folder per split, or the files of a hub snapshot), else from the
    hub at ``source.revision``."""
    import datasets

    datasets.disable_progress_bars()
    wanted = [spec.train_split, spec.test_split]
    if source.path:
        found = _local_splits(Path(source.path).expanduser(), spec)
        missing = [n for n in wanted if n not in found]
        if missing:
            raise DataError(
                f"source.path: {source.path} has the splits {sorted(found)}; task {spec.name} reads "
                f"'{spec.train_split}' (train) and '{spec.test_split}' (test), as on the hub"
            )
        return {n: found[n] for n in wanted}
    return {n: _hub_split(spec, source.revision, n) for n in wanted}


def _local_splits(path: Path, spec: NlpTask) -> dict[str, datasets.Dataset]:
    import datasets

    if not path.is_dir():
        raise DataError(
            f"source.path: {path} is a file; task {spec.name} needs its hub splits: a folder saved with "
            f"{save_hint(spec.hub, spec.config)} or a hub snapshot's files"
        )
    try:
        if (path / "dataset_dict.json").is_file():
            return dict(datasets.load_from_disk(str(path)))
        if (path / "state.json").is_file():
            raise DataError(
                f"source.path: {path} is one saved split; save the task's splits together ({save_hint(spec.hub, spec.config)}) "
                f"or each in a folder named after it ({path}/{spec.train_split}, {path}/{spec.test_split})"
            )
        saved = {d.name: d for d in path.iterdir() if (d / "state.json").is_file()}
        if saved:
            return {name: datasets.load_from_disk(str(d)) for name, d in saved.items()}
        # A hub snapshot: the repository's files (or its parquet conversion, one folder per config).
        root = path / spec.config if spec.config and (path / spec.config).is_dir() else path
        return dict(datasets.load_dataset(str(root), cache_dir=cache_dir()))
    except DataError:
        raise
    except Exception as e:  # datasets raises many types for one cause: files it cannot read as splits
        raise DataError(f"source.path: {path} cannot be read as the splits of task {spec.name} ({first_line(e)})") from None


def _hub_split(spec: NlpTask, revision: str | None, split: str) -> datasets.Dataset:
    import datasets

    try:
        return datasets.load_dataset(spec.hub, spec.config, split=split, revision=revision, cache_dir=cache_dir())
    except Exception as e:
        if "scripts are no longer supported" in str(e):
            raise DataError(
                f"source={spec.name}: '{spec.hub}' ships a loading script, which this version of datasets does not run; "
                f"save the hub's parquet conversion with huggingface_hub.snapshot_download('{spec.hub}', "
                "repo_type='dataset', revision='refs/convert/parquet', local_dir=DIR), then run with source.path=DIR"
            ) from None
        raise DataError(
            f"source={spec.name}: the '{split}' split of '{spec.hub}' cannot be fetched ({type(e).__name__}: "
            f"{first_line(e)}); where the hub is reachable, save a copy with {save_hint(spec.hub, spec.config)}, "
            "then run with source.path=DIR"
        ) from None
