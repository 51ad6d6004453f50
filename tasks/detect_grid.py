"""Stage ``detect_grid``: overlap detection on every cell's pool, graded against the true groups."""

from __future__ import annotations

import numpy as np

from models.overlap import detect_overlap, detection_scores
from models.synthetic import OVERLAP
from tasks.grid_artifacts import GridData, GridDetection, GridModel
from tasks.stage import StageOutput, cached_stage


@cached_stage(GridDetection)
def detect_grid(out: StageOutput, detector: str, data: GridData, weak: GridModel) -> None:
    pool = data.split("w2s_train")
    probs = weak.pool_probs
    groups = np.empty(len(pool.label), dtype=np.int64)
    per_cell = []
    for cell in range(data.info.n_cells):
        rows = np.flatnonzero(pool.cell == cell)
        # The strong side's representation of a synthetic point is its full feature vector.
        found = detect_overlap(probs[rows], pool.x[rows], detector)
        groups[rows] = found.groups
        per_cell.append(
            {
                "cell": cell,
                "density": found.density,
                "true_density": float(np.mean(pool.group[rows] == OVERLAP)),
                **detection_scores(pool.group[rows], found.groups),
            }
        )
    GridDetection.write(out, detector, groups, per_cell)
