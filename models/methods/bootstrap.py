"""``bootstrap``: Burns et al.'s chain weak → intermediate → strong, each link on its own
half of the bought points."""

from __future__ import annotations

from typing import Literal

import numpy as np

from models.head import IntermediateHead, fit_spec
from models.methods.base import Method, MethodParams


class BootstrapParams(MethodParams):
    name: Literal["bootstrap"] = "bootstrap"
    intermediate: IntermediateHead = IntermediateHead()


class Bootstrap(Method):
    """The intermediate learns from the weak labels of one half of the points and labels the
    other half, on which the strong student learns: no model labels its own training data."""

    name = "bootstrap"
    Params = BootstrapParams
    summary = "an intermediate model learns from the weak labels of half the points and labels the other half"
    features_only = "it trains an intermediate model on the strong features"

    def fit(self, spec, data, seed, params, upstream):
        from models.training import fit_classifier, predict_probs

        order = np.random.default_rng(seed).permutation(len(data.x))
        first, second = order[: len(order) // 2], order[len(order) // 2 :]
        if len(first) == 0 or len(second) == 0:
            raise ValueError("bootstrap needs at least two training points")
        middle = fit_classifier(
            fit_spec(params.intermediate), data.x[first], data.weak_probs[first], data.x_val, data.val_targets, seed
        )
        labels = predict_probs(middle.net, data.x[second])
        # The strong student's supervisor is now the intermediate: honest selection uses its labels.
        val = data.val_targets if data.oracle else predict_probs(middle.net, data.x_val)
        student = fit_classifier(spec, data.x[second], labels, data.x_val, val, seed)
        return student, {"intermediate_n_train": len(first), "intermediate_best_epoch": middle.best_epoch}


METHOD = Bootstrap()
