"""Stage ``ingest_grid``: every cell of a study, for every seed, as one ``DatasetDict`` on disk.

A cell is a list of parts (one per source), each giving group counts per split. Rows
carry their ``cell`` and ``source`` so that later stages can fit all cells at once.
"""

from __future__ import annotations

import numpy as np

from models.synthetic import GROUPS, draw_theta, overlap_density, sample_mixture
from tasks.data import GRID_SPLITS, arrow_dataset
from tasks.grid_artifacts import GridData
from tasks.specs import SyntheticTask
from tasks.stage import StageOutput, cached_stage


@cached_stage(GridData)
def ingest_grid(out: StageOutput, task: SyntheticTask, layout: list[list[dict]], seeds: int) -> None:
    from datasets import ClassLabel, Features, Sequence, Value

    columns = {split: {"features": [], "label": [], "group": [], "cell": [], "source": []} for split in GRID_SPLITS}
    index = []
    for seed in range(seeds):
        # One task (theta) per seed, shared by its cells; every part draws from its own stream.
        theta = draw_theta(np.random.default_rng([seed, 0]), task.d_easy, task.d_hard)
        for g, parts in enumerate(layout):
            cell = len(index)
            for k, part in enumerate(parts):
                rng = np.random.default_rng([seed, 2, g, k])
                for split in GRID_SPLITS:
                    m = sample_mixture(rng, theta, task.d_easy, part[split], task.noise_var)
                    col = columns[split]
                    col["features"].append(m.x)
                    col["label"].append(m.label)
                    col["group"].append(m.group)
                    col["cell"].append(np.full(len(m), cell))
                    col["source"].append(np.full(len(m), k))
            index.append(
                {"cell": cell, "seed": seed, "grid": g, "true_density": [overlap_density(p["w2s_train"]) for p in parts]}
            )
    features = Features(
        {
            "features": Sequence(Value("float32"), length=task.d_easy + task.d_hard),
            "label": ClassLabel(names=["negative", "positive"]),
            "group": ClassLabel(names=list(GROUPS)),
            "cell": Value("int32"),
            "source": Value("int32"),
        }
    )
    dd = {
        split: arrow_dataset({name: np.concatenate(parts) for name, parts in col.items()}, features)
        for split, col in columns.items()
    }
    GridData.write(out, dd, index, d_easy=task.d_easy, n_classes=2)
