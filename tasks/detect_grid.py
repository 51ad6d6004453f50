"""Stage ``detect_grid``: overlap detection on every cell's pool, graded against the true groups."""

from __future__ import annotations

import json

import numpy as np

from models.overlap import detect_overlap, detection_scores
from models.synthetic import OVERLAP
from tasks.data import load_array, load_grid_split, save_array
from tasks.manifest import Manifest
from tasks.stage import StageOutput, cached_stage


@cached_stage
def detect_grid(out: StageOutput, detector: str, data: Manifest, weak: Manifest) -> None:
    pool = load_grid_split(data, "w2s_train")
    probs = load_array(weak, "pool_probs")
    groups = np.empty(len(pool.label), dtype=np.int64)
    per_cell = []
    for cell in range(int(data.facts["n_cells"])):
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
    save_array(out.dir, "groups", groups)
    out.path("per_cell.json").write_text(json.dumps(per_cell))
    out.facts.update(
        detector=detector,
        mean_overlap_f1=float(np.mean([c["overlap_f1"] for c in per_cell])),
        mean_hard_f1=float(np.mean([c["hard_f1"] for c in per_cell])),
    )
