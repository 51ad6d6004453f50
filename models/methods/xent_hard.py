"""``xent_hard``: cross-entropy on the weak labels' argmax."""

from __future__ import annotations

from typing import Literal

from models.labels import hard_labels
from models.methods.base import LossMethod, MethodParams


class XentHardParams(MethodParams):
    name: Literal["xent_hard"] = "xent_hard"


class XentHard(LossMethod):
    name = "xent_hard"
    Params = XentHardParams
    summary = "cross-entropy on the weak labels' argmax"

    def targets(self, params, data):
        # Ground-truth validation targets (oracle) stay as they are.
        return hard_labels(data.weak_probs), data.val_targets if data.oracle else hard_labels(data.val_targets)


METHOD = XentHard()
