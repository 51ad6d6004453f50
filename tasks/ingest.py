"""Stage ``ingest``: a source spec and a seed become a ``DatasetDict`` on disk."""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

import numpy as np

from models.class_blocks import class_means, sample_class_blocks
from models.synthetic import GROUPS, Mixture, draw_theta, overlap_density, sample_mixture, scale_counts
from tasks.data import SPLITS, arrow_dataset, save_dataset_dict
from tasks.stage import StageOutput, cached_stage

if TYPE_CHECKING:  # the config is defined by flows, which import tasks
    from flows.config import ClassBlocksSource, SourceConfig, SplitScale, SyntheticTask


@cached_stage
def ingest(
    out: StageOutput, source: SourceConfig | ClassBlocksSource, task: SyntheticTask | None, splits: SplitScale, seed: int
) -> None:
    """``task`` is the synthetic sources' shared task (None for other kinds)."""
    if source.kind == "class_blocks":
        _ingest_class_blocks(out, source, splits, seed)
    else:
        _ingest_synthetic(out, source, task, splits, seed)


def _ingest_synthetic(out: StageOutput, source: SourceConfig, task: SyntheticTask, splits: SplitScale, seed: int) -> None:
    # theta is the task, shared by every source of a run; each source's draws have their own
    # stream, keyed by its name so that reordering or adding sources changes nothing here.
    theta = draw_theta(np.random.default_rng([seed, 0]), task.d_easy, task.d_hard)
    rng = _source_stream(seed, source.name)

    def draw(split: str) -> Mixture:
        counts = scale_counts(source.counts.model_dump(), getattr(splits, split))
        return sample_mixture(rng, theta, task.d_easy, counts, task.noise_var)

    sizes = _save_splits(out, draw, task.d_easy + task.d_hard, task.d_easy, ["negative", "positive"], GROUPS)
    out.facts.update(
        source=source.name,
        n_classes=2,
        sizes=sizes,
        true_overlap_density=overlap_density(source.counts.model_dump()),
    )


def _ingest_class_blocks(out: StageOutput, source: ClassBlocksSource, splits: SplitScale, seed: int) -> None:
    # As for synthetic sources: the class means are the task, shared by every source of the
    # run with the same settings; each source's draws have their own stream.
    means = class_means(np.random.default_rng([seed, 0]), source.n_classes, source.d, source.block_spread, source.class_spread)
    rng = _source_stream(seed, source.name)

    def draw(split: str) -> Mixture:
        n = max(1, int(round(source.size * getattr(splits, split))))
        return sample_class_blocks(rng, means, n, source.noise, source.d_weak, source.weak_noise)

    sizes = _save_splits(out, draw, source.d, source.d_weak, [f"class_{k}" for k in range(source.n_classes)])
    out.facts.update(source=source.name, n_classes=source.n_classes, sizes=sizes)


def _source_stream(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng([seed, 1, zlib.crc32(name.encode())])


def _save_splits(out: StageOutput, draw, d: int, d_weak: int, label_names: list[str], groups=None) -> dict[str, int]:
    """Every split drawn in order (the draws share one stream) and saved as a ``DatasetDict``;
    a ground-truth ``group`` column when the task has ``groups``."""
    from datasets import ClassLabel, Features, Sequence, Value

    columns = {
        "features": Sequence(Value("float32"), length=d),
        "weak_features": Sequence(Value("float32"), length=d_weak),
        "label": ClassLabel(names=label_names),
    }
    if groups:
        columns["group"] = ClassLabel(names=list(groups))
    dd, sizes = {}, {}
    for split in SPLITS:
        m = draw(split)
        values = {"features": m.x, "weak_features": m.x_weak, "label": m.label}
        if groups:
            values["group"] = m.group
        dd[split] = arrow_dataset(values, Features(columns))
        sizes[split] = len(m)
    save_dataset_dict(dd, out.dir)
    return sizes
