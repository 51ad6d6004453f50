"""Stage ``ingest``: a source spec and a seed become a ``DatasetDict`` on disk."""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

import numpy as np

from models.synthetic import GROUPS, draw_theta, overlap_density, sample_mixture, scale_counts
from tasks.data import SPLITS, arrow_dataset, save_dataset_dict
from tasks.stage import StageOutput, cached_stage

if TYPE_CHECKING:  # the config is defined by flows, which import tasks
    from flows.config import SourceConfig, SplitScale, SyntheticTask


@cached_stage
def ingest(out: StageOutput, source: SourceConfig, task: SyntheticTask, splits: SplitScale, seed: int) -> None:
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
