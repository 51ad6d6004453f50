"""``xent``: cross-entropy on the weak soft labels (Burns et al.'s ``xent_loss``)."""

from __future__ import annotations

from typing import Literal

from models.methods.base import LossMethod, MethodParams


class XentParams(MethodParams):
    name: Literal["xent"] = "xent"


class Xent(LossMethod):
    name = "xent"
    Params = XentParams
    summary = "cross-entropy on the weak soft labels"


METHOD = Xent()
