"""``probe_filter``: EleutherAI's probe filtering of the weak labels, then ``xent``
(the probe and the filter: models/probe_filter.py)."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from models.methods.base import Method, MethodParams


class ProbeFilterParams(MethodParams):
    """Their defaults: a kNN probe (k = 20) that drops the 10% of points it disagrees with most."""

    name: Literal["probe_filter"] = "probe_filter"
    probe: Literal["knn", "logistic"] = "knn"
    k: int = Field(20, ge=1, description="knn: neighbours")
    l2p: float = Field(1e-3, ge=0, description="logistic: L2 penalty")
    contamination: float = Field(0.1, ge=0, lt=1, description="filter: the share of points dropped")
    mode: Literal["filter", "relabel"] = "filter"


class ProbeFilterMethod(Method):
    """A probe on the strong features, fitted on the weak labels, drops (or relabels) the
    training and validation points where it disagrees most; then xent. Ground-truth
    validation targets (oracle) are left as they are."""

    name = "probe_filter"
    Params = ProbeFilterParams
    summary = "a probe on the strong features drops (or relabels) the weak labels it disagrees with most, then xent"
    features_only = "its probe reads the frozen features of the training points"

    def fit(self, spec, data, seed, params, upstream):
        from models.probe_filter import ProbeFilter
        from models.training import fit_classifier

        probe = ProbeFilter(**params.model_dump(exclude={"name"}))
        keep, targets, val_keep, val_targets = probe.apply(data.x, data.weak_probs, data.x_val, data.val_targets)
        if data.oracle:
            val_keep, val_targets = np.ones(len(data.x_val), dtype=bool), data.val_targets
        fit = fit_classifier(spec, data.x[keep], targets[keep], data.x_val[val_keep], val_targets[val_keep], seed)
        return fit, {"probe_kept": int(keep.sum()), "probe_val_kept": int(val_keep.sum())}


METHOD = ProbeFilterMethod()
