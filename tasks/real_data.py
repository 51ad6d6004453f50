"""Reading a real dataset through HF ``datasets``: a local file or folder, the hub, or a bundled set.

Everything a user can get wrong here (a missing file, an absent column, one class only,
NaN features, empty texts) is a :class:`DataError` whose message names the offending
key, file or column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tasks.errors import DataError
from tasks.manifest import hash_files
from tasks.workspace import home

from tasks.specs import DatasetSource

if TYPE_CHECKING:
    import datasets


FILE_BUILDERS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}


@dataclass(frozen=True)
class Rows:
    """A dataset's rows as arrays: one input kind (text, image or numeric features) and labels."""

    label: np.ndarray  # class codes into label_names
    label_names: list[str]
    row: np.ndarray  # index of each row in the table as read
    text: list[str] | None = None
    images: np.ndarray | None = None  # (n, H, W) or (n, H, W, C)
    features: np.ndarray | None = None  # (n, d)
    feature_names: tuple[str, ...] = ()
    test: np.ndarray | None = None  # True for rows of a fixed test split (a benchmark's hub test split)

    @property
    def input_kind(self) -> str:
        return "text" if self.text is not None else "image" if self.images is not None else "numeric"


def source_fingerprint(source: DatasetSource) -> str:
    """What identifies the data behind ``source``, for cache keys: a local file's or folder's
    content hash (an edited file must not hit a stale cache); a hub dataset's coordinates and
    the commit its revision names now (a new upstream commit is new data)."""
    return resolve_source(source)[1]


def resolve_source(source: DatasetSource) -> tuple[DatasetSource, str]:
    """``source`` with a hub dataset's revision pinned to the commit it names now, and the
    data's fingerprint. The pinned source is what ingestion reads, so that the rows come from
    the very commit the cache key holds; a hub that cannot be reached is one DataError line."""
    if source.path:
        return source, _content_fingerprint(Path(source.path).expanduser(), "source.path")
    if source.benchmark:
        from models.nlp_tasks import task

        spec = task(source.benchmark)
        sha = hub_revision(spec.hub, spec.config, source.revision, f"source={spec.name}")
        return source.model_copy(update={"revision": sha}), f"hub:{spec.hub}:{spec.config or ''}@{sha}"
    if source.hub:
        if Path(source.hub).expanduser().is_dir():  # a folder laid out like a hub repository
            return source, _content_fingerprint(Path(source.hub).expanduser(), "source.hub")
        sha = hub_revision(source.hub, source.hub_config, source.revision, "source.hub")
        pinned = source.model_copy(update={"revision": sha})
        return pinned, f"hub:{source.hub}:{source.hub_config or ''}:{source.hub_split}@{sha}"
    return source, f"bundled:{source.bundled}"


def check_hub_reachable(source) -> None:
    """For a source read from the hub: its revision resolves now, or one DataError line says
    how to point at a local copy. Local, bundled and generated sources pass at once."""
    if getattr(source, "kind", None) != "dataset" or source.path or source.bundled:
        return
    if source.hub and Path(source.hub).expanduser().is_dir():
        return
    resolve_source(source)


def _content_fingerprint(path: Path, key: str) -> str:
    if not path.exists():
        raise DataError(f"{key}: {path} does not exist")
    # A datasets folder's state.json holds a random fingerprint of its own: left out.
    root, files = (path.parent, [path]) if path.is_file() else (
        path, [p for p in path.rglob("*") if p.is_file() and p.name != "state.json"])
    try:
        return "file:" + hash_files(root, files)[:32]
    except OSError as e:
        raise DataError(f"{key}: {e.filename} cannot be read: {e.strerror}") from None


COMMIT = re.compile(r"[0-9a-f]{40}")


def hub_revision(repo: str, config: str | None, revision: str | None, key: str) -> str:
    """The commit that ``revision`` (a branch, tag or commit; default the main branch) of hub
    dataset ``repo`` names now. A full commit sha is taken as it is, without asking the hub."""
    if revision and COMMIT.fullmatch(revision):
        return revision
    from huggingface_hub import HfApi
    from huggingface_hub.errors import OfflineModeIsEnabled

    try:
        return HfApi().dataset_info(repo, revision=revision, timeout=10).sha
    except Exception as e:  # offline, unreachable, unknown repo or revision: one cause, one line
        why = "HF_HUB_OFFLINE is set" if isinstance(e, OfflineModeIsEnabled) else f"{type(e).__name__}: {first_line(e)}"
        raise DataError(
            f"{key}: the hub dataset '{repo}' cannot be reached ({why}); where the hub is reachable, save a copy "
            f"with {save_hint(repo, config)}, then run with source.path=DIR"
        ) from None


def save_hint(repo: str, config: str | None) -> str:
    args = ", ".join(repr(a) for a in (repo, config) if a)
    return f"datasets.load_dataset({args}).save_to_disk(DIR)"


def load_table(source: DatasetSource) -> datasets.Dataset:
    import datasets

    datasets.disable_progress_bars()
    if source.bundled:
        from tasks.bundled import load_bundled

        return load_bundled(source.bundled)
    if source.hub:
        return _load_hub(source)
    return _load_local(Path(source.path).expanduser())


def _load_local(path: Path) -> datasets.Dataset:
    import datasets

    if path.is_dir():
        try:
            loaded = datasets.load_from_disk(str(path))
        except (FileNotFoundError, ValueError) as e:
            raise DataError(f"source.path: {path} is not a folder saved by datasets ({e})") from None
        # A saved DatasetDict's splits are pooled: the run makes its own seeded splits.
        if isinstance(loaded, datasets.DatasetDict):
            loaded = datasets.concatenate_datasets(list(loaded.values()))
        return loaded
    builder = FILE_BUILDERS.get(path.suffix.lower())
    if builder is None:
        raise DataError(f"source.path: {path} is not a CSV, JSON(L) or Parquet file (or a datasets folder)")
    kwargs = {"delimiter": "\t"} if path.suffix.lower() == ".tsv" else {}
    try:
        return datasets.load_dataset(builder, data_files=str(path), split="train", cache_dir=cache_dir(), **kwargs)
    except Exception as e:  # the builders raise many types for one cause: an unparsable file
        raise DataError(f"source.path: {path} cannot be parsed as {builder}: {first_line(e)}") from None


def _load_hub(source: DatasetSource) -> datasets.Dataset:
    """A hub dataset by name (or a local folder laid out like a hub repository)."""
    import datasets

    try:
        return datasets.load_dataset(
            source.hub, source.hub_config, split=source.hub_split, revision=source.revision, cache_dir=cache_dir()
        )
    except Exception as e:
        raise DataError(
            f"source.hub: dataset '{source.hub}' cannot be fetched ({type(e).__name__}: {first_line(e)}); "
            "where the hub is reachable, save it with datasets.load_dataset(...).save_to_disk(DIR), "
            "then point source.path=DIR at the copy"
        ) from None


def cache_dir() -> str:
    # datasets' own cache would otherwise land in the user's home, outside the workspace.
    return str(home() / "hf-datasets")


def first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def read_rows(table: datasets.Dataset, source: DatasetSource) -> Rows:
    """The rows ``source`` selects, as arrays, validated."""
    columns = set(table.column_names)

    def need(key: str, column: str) -> str:
        if column not in columns:
            raise DataError(f"source.{key}: column '{column}' is not in the data (columns: {', '.join(sorted(columns))})")
        return column

    need("label_column", source.label_column)
    names, codes = _label_codes(table, source.label_column)
    keep = np.ones(len(table), dtype=bool)
    if source.filter_column:
        values = table[need("filter_column", source.filter_column)]
        wanted = {str(v) for v in source.filter_values}
        keep = np.array([str(v) in wanted for v in values])
        if not keep.any():
            raise DataError(f"source.filter_values: no row has {source.filter_column} in {list(source.filter_values)}")
    rows = np.flatnonzero(keep)
    label = codes[rows]
    if len(np.unique(label)) < 2:
        raise DataError(f"source.label_column: column '{source.label_column}' holds one class only ({names[label[0]]!r})")
    common = dict(label=label, label_names=names, row=rows)
    if source.text_column:
        column = table[need("text_column", source.text_column)]
        text = [column[int(i)] for i in rows]
        empty = [i for i, t in zip(rows, text) if not isinstance(t, str) or not t.strip()]
        if empty:
            raise DataError(f"source.text_column: column '{source.text_column}' has {len(empty)} empty texts (first at row {empty[0]})")
        return Rows(text=text, **common)
    if source.image_column:
        images = _images(table.select(rows)[need("image_column", source.image_column)], source.image_column)
        return Rows(images=images, **common)
    feature_names = source.feature_columns or tuple(
        c for c in table.column_names if c not in (source.label_column, source.filter_column) and _is_numeric(table, c)
    )
    if not feature_names:
        raise DataError("source.feature_columns: the data has no numeric column besides the label; name a text_column?")
    picked = table.select(rows)
    matrix = np.column_stack([_numeric(picked, need("feature_columns", c), c) for c in feature_names]).astype(np.float32)
    return Rows(features=matrix, feature_names=tuple(feature_names), **common)


def _label_codes(table: datasets.Dataset, column: str) -> tuple[list[str], np.ndarray]:
    """Class names and each row's code; names come from the whole table (before any filter),
    so that several sources cut from one dataset share their classes."""
    from datasets import ClassLabel

    feature = table.features[column]
    values = table[column]
    if isinstance(feature, ClassLabel):
        return list(feature.names), np.asarray(values, dtype=np.int64)
    if any(v is None for v in values):
        raise DataError(f"source.label_column: column '{column}' has missing labels")
    names = sorted({str(v) for v in values}, key=_natural)
    index = {n: i for i, n in enumerate(names)}
    return names, np.array([index[str(v)] for v in values], dtype=np.int64)


def _natural(name: str):
    try:
        return (0, float(name), "")
    except ValueError:
        return (1, 0.0, name)


def _is_numeric(table: datasets.Dataset, column: str) -> bool:
    dtype = getattr(table.features[column], "dtype", "")
    return dtype.startswith(("int", "uint", "float", "bool"))


def _numeric(table: datasets.Dataset, column: str, name: str) -> np.ndarray:
    if not _is_numeric(table, column):
        raise DataError(f"source.feature_columns: column '{name}' is not numeric")
    values = np.asarray(table.with_format("numpy")[column], dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        raise DataError(f"source.feature_columns: column '{name}' has {int(bad.sum())} NaN or infinite values")
    return values


def _images(values, column: str) -> np.ndarray:
    """PIL images or nested lists of equal size, as one float array."""
    arrays = [np.asarray(v, dtype=np.float32) for v in values]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise DataError(f"source.image_column: images in '{column}' differ in size ({sorted(shapes)[:3]}…); resize them first")
    images = np.stack(arrays)
    if images.ndim not in (3, 4) or not np.isfinite(images).all():
        raise DataError(f"source.image_column: '{column}' must hold finite (H, W) or (H, W, C) images")
    return images
