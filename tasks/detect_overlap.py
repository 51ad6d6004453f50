"""Stage ``detect_overlap``: easy / hard / overlap masks for each source's whole pool."""

from __future__ import annotations

import numpy as np

from models.overlap import detect_overlap as detect
from models.overlap import detection_scores
from models.synthetic import OVERLAP
from tasks.artifacts import OverlapDiagnostic, SourceSplits, WeakLabels
from tasks.specs import OverlapConfig
from tasks.stage import StageOutput, cached_stage


@cached_stage(OverlapDiagnostic)
def detect_overlap(out: StageOutput, overlap: OverlapConfig, labels: WeakLabels, sources: list[SourceSplits]) -> None:
    """A diagnostic (see OverlapDiagnostic): the density the detector finds in each source's
    whole pool, and how well it finds it where the true groups are known."""
    per_source, groups = [], []
    for i, source in enumerate(sources):
        pool = source.split("w2s_train")
        # The strong side's representation of a synthetic point is its full feature vector.
        found = detect(labels.pool(i), pool.x, overlap.detector)
        groups.append(found.groups)
        row = {
            "source": source.name,
            "density": found.density,
            "tau_confidence": found.tau_confidence,
            "tau_alignment": found.tau_alignment,
        }
        if pool.group is not None:
            row["true_density"] = float(np.mean(pool.group == OVERLAP))
            row.update(detection_scores(pool.group, found.groups))
        per_source.append(row)
    OverlapDiagnostic.write(out, overlap.detector, groups, per_source)
