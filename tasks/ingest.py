"""Stage ``ingest``: a source spec and a seed become a ``DatasetDict`` on disk."""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

import numpy as np

from models.class_blocks import class_means, sample_class_blocks
from models.synthetic import GROUPS, draw_theta, overlap_density, sample_mixture, scale_counts
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
    from datasets import ClassLabel, Features, Sequence, Value

    # theta is the task, shared by every source of a run; each source's draws have their own
    # stream, keyed by its name so that reordering or adding sources changes nothing here.
    theta = draw_theta(np.random.default_rng([seed, 0]), task.d_easy, task.d_hard)
    rng = np.random.default_rng([seed, 1, zlib.crc32(source.name.encode())])
    features = Features(
        {
            "features": Sequence(Value("float32"), length=task.d_easy + task.d_hard),
            "weak_features": Sequence(Value("float32"), length=task.d_easy),
            "label": ClassLabel(names=["negative", "positive"]),
            "group": ClassLabel(names=list(GROUPS)),
        }
    )
    dd, sizes = {}, {}
    for split in SPLITS:
        counts = scale_counts(source.counts.model_dump(), getattr(splits, split))
        m = sample_mixture(rng, theta, task.d_easy, counts, task.noise_var)
        dd[split] = arrow_dataset({"features": m.x, "weak_features": m.x_weak, "label": m.label, "group": m.group}, features)
        sizes[split] = len(m)
    save_dataset_dict(dd, out.dir)
    out.facts.update(
        source=source.name,
        n_classes=2,
        sizes=sizes,
        true_overlap_density=overlap_density(source.counts.model_dump()),
    )


def _ingest_class_blocks(out: StageOutput, source: ClassBlocksSource, splits: SplitScale, seed: int) -> None:
    from datasets import ClassLabel, Features, Sequence, Value

    # As for synthetic sources: the class means are the task, shared by every source of the
    # run with the same settings; each source's draws have their own stream.
    means = class_means(np.random.default_rng([seed, 0]), source.n_classes, source.d, source.block_spread, source.class_spread)
    rng = np.random.default_rng([seed, 1, zlib.crc32(source.name.encode())])
    features = Features(
        {
            "features": Sequence(Value("float32"), length=source.d),
            "weak_features": Sequence(Value("float32"), length=source.d_weak),
            "label": ClassLabel(names=[f"class_{k}" for k in range(source.n_classes)]),
        }
    )
    dd, sizes = {}, {}
    for split in SPLITS:
        n = max(1, int(round(source.size * getattr(splits, split))))
        m = sample_class_blocks(rng, means, n, source.noise, source.d_weak, source.weak_noise)
        dd[split] = arrow_dataset({"features": m.x, "weak_features": m.x_weak, "label": m.label}, features)
        sizes[split] = n
    save_dataset_dict(dd, out.dir)
    out.facts.update(source=source.name, n_classes=source.n_classes, sizes=sizes)
