"""``adapt_conf``: Guo et al.'s adaptive confidence distillation (models.losses.AdaptConfLoss)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from models.methods.base import LossMethod, MethodParams


class AdaptConfParams(MethodParams):
    """Temperature ``T``, sharpness ``tau`` (their default, 0.5); ``beta_ramp`` > 0 ramps
    beta from 0 over that share of the steps (docs/methods.md says why 0.25, where their
    AdaptConf has none)."""

    name: Literal["adapt_conf"] = "adapt_conf"
    T: float = Field(1.0, gt=0)
    tau: float = Field(0.5, gt=0)
    beta_ramp: float = Field(0.25, ge=0, le=1)


class AdaptConf(LossMethod):
    name = "adapt_conf"
    Params = AdaptConfParams
    summary = "distillation from the weak model mixed, per point, with the student's own argmax"

    def loss(self, params):
        from models.losses import AdaptConfLoss

        return AdaptConfLoss(T=params.T, tau=params.tau, beta_ramp=params.beta_ramp)


METHOD = AdaptConf()
