"""Stage ``detect_overlap``: easy / hard / overlap masks for each source's whole pool."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from models.overlap import detect_overlap as detect
from models.overlap import detection_scores
from models.synthetic import OVERLAP
from tasks.data import load_array, load_split, save_array
from tasks.manifest import Manifest
from tasks.stage import StageOutput, cached_stage

if TYPE_CHECKING:
    from flows.config import OverlapConfig


@cached_stage
def detect_overlap(out: StageOutput, overlap: OverlapConfig, labels: Manifest, sources: list[Manifest]) -> None:
    per_source = []
    for i, source in enumerate(sources):
        pool = load_split([source], "w2s_train")
        # The strong side's representation of a synthetic point is its full feature vector.
        found = detect(load_array(labels, f"pool_probs_{i}"), pool.x, overlap.detector)
        save_array(out.dir, f"groups_{i}", found.groups)
        row = {
            "source": source.facts["source"],
            "density": found.density,
            "tau_confidence": found.tau_confidence,
            "tau_alignment": found.tau_alignment,
        }
        if pool.group is not None:
            row["true_density"] = float(np.mean(pool.group == OVERLAP))
            row.update(detection_scores(pool.group, found.groups))
        per_source.append(row)
    out.facts.update(detector=overlap.detector, sources=per_source)
