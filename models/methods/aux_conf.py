"""``aux_conf``: Burns et al.'s auxiliary confidence loss (models.losses.AuxConfLoss)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from models.methods.base import LossMethod, MethodParams


class AuxConfParams(MethodParams):
    """``alpha`` warms up linearly to ``alpha_max`` over the first ``warmup`` of the steps."""

    name: Literal["aux_conf"] = "aux_conf"
    alpha_max: float = Field(0.75, ge=0, le=1)
    warmup: float = Field(0.2, ge=0, le=1)


class AuxConf(LossMethod):
    name = "aux_conf"
    Params = AuxConfParams
    summary = "(1 − α)·CE(weak) + α·CE(own predictions hardened to the weak labels' class balance)"

    def loss(self, params):
        from models.losses import AuxConfLoss

        return AuxConfLoss(alpha_max=params.alpha_max, warmup=params.warmup)


METHOD = AuxConf()
