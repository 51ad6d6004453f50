"""Stage ``ingest``: a source spec and a seed become a ``DatasetDict`` on disk."""

from __future__ import annotations

import zlib

import numpy as np

from models.class_blocks import class_means, sample_class_blocks
from models.synthetic import GROUPS, Mixture, draw_theta, overlap_density, sample_mixture, scale_counts
from tasks.artifacts import SourceSplits
from tasks.data import SPLITS, arrow_dataset
from tasks.specs import ClassBlocksSource, SourceConfig, SplitScale, SyntheticTask
from tasks.stage import StageOutput, cached_stage


@cached_stage(SourceSplits)
def ingest(
    out: StageOutput, source: SourceConfig | ClassBlocksSource, task: SyntheticTask | None, splits: SplitScale, seed: int
) -> None:
    """``task`` is the synthetic sources' shared task (None for other kinds)."""
    if source.kind not in GENERATORS:
        raise ValueError(f"source '{source.name}': no generator for kind '{source.kind}' (kinds: {', '.join(GENERATORS)})")
    GENERATORS[source.kind](out, source, task, splits, seed)


def _ingest_synthetic(out: StageOutput, source: SourceConfig, task: SyntheticTask, splits: SplitScale, seed: int) -> None:
    # theta is the task, shared by every source of a run; each source's draws have their own
    # stream, keyed by its name so that reordering or adding sources changes nothing here.
    theta = draw_theta(np.random.default_rng([seed, 0]), task.d_easy, task.d_hard)
    rng = _source_stream(seed, source.name)

    def draw(split: str) -> Mixture:
        counts = scale_counts(source.counts.model_dump(), getattr(splits, split))
        return sample_mixture(rng, theta, task.d_easy, counts, task.noise_var)

    splits = _draw_splits(draw, task.d_easy + task.d_hard, task.d_easy, ["negative", "positive"], GROUPS)
    SourceSplits.write(
        out, splits, source=source.name, n_classes=2, sizes={k: len(v) for k, v in splits.items()},
        true_overlap_density=overlap_density(source.counts.model_dump()),
    )


def _ingest_class_blocks(out: StageOutput, source: ClassBlocksSource, task: None, splits: SplitScale, seed: int) -> None:
    # As for synthetic sources: the class means are the task, shared by every source of the
    # run with the same settings; each source's draws have their own stream.
    means = class_means(np.random.default_rng([seed, 0]), source.n_classes, source.d, source.block_spread, source.class_spread)
    rng = _source_stream(seed, source.name)

    def draw(split: str) -> Mixture:
        n = max(1, int(round(source.size * getattr(splits, split))))
        return sample_class_blocks(rng, means, n, source.noise, source.d_weak, source.weak_noise)

    splits = _draw_splits(draw, source.d, source.d_weak, [f"class_{k}" for k in range(source.n_classes)])
    SourceSplits.write(out, splits, source=source.name, n_classes=source.n_classes, sizes={k: len(v) for k, v in splits.items()})


# A generated source's kind -> how its splits are drawn (real datasets go through ingest_dataset).
GENERATORS = {"synthetic": _ingest_synthetic, "class_blocks": _ingest_class_blocks}


def _source_stream(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng([seed, 1, zlib.crc32(name.encode())])


def _draw_splits(draw, d: int, d_weak: int, label_names: list[str], groups=None) -> dict:
    """Every split drawn in order (the draws share one stream), as datasets; a ground-truth
    ``group`` column when the task has ``groups``."""
    from datasets import ClassLabel, Features, Sequence, Value

    columns = {
        "features": Sequence(Value("float32"), length=d),
        "weak_features": Sequence(Value("float32"), length=d_weak),
        "label": ClassLabel(names=label_names),
    }
    if groups:
        columns["group"] = ClassLabel(names=list(groups))
    dd = {}
    for split in SPLITS:
        m = draw(split)
        values = {"features": m.x, "weak_features": m.x_weak, "label": m.label}
        if groups:
            values["group"] = m.group
        dd[split] = arrow_dataset(values, Features(columns))
    return dd
