"""A classifier head and how it is fitted: the settings every model on features shares
(each side's model section of the config, bootstrap's intermediate model).

Kept light (pydantic only): configs are read long before anything trains.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class HeadSettings(BaseModel):
    """Full-batch L-BFGS by default, as scikit-learn fits its linear models."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    arch: Literal["linear", "mlp", "cnn"] = Field("linear", description="cnn: a small conv net over square one-channel images")
    hidden: int = Field(64, ge=1)
    C: float = Field(1.0, gt=0, description="inverse L2 strength, scikit-learn's convention")
    optimizer: Literal["lbfgs", "adam"] = "lbfgs"
    lr: float = Field(1.0, gt=0)
    epochs: int = Field(10, ge=1)
    lbfgs_iters: int = Field(20, ge=1)
    patience: int = Field(2, ge=1)
    batch_size: int = Field(0, ge=0, description="points per optimiser step; 0 = the whole split")


def fit_spec(head: HeadSettings):
    """The fitting recipe ``head`` describes (models.training.FitSpec). A function here, not a
    method of the config: a stage that calls it imports this module, so the stage's code
    fingerprint follows it (the config's own modules are bookkeeping there)."""
    from models.training import FitSpec

    return FitSpec(**{k: getattr(head, k) for k in HeadSettings.model_fields})


class IntermediateHead(HeadSettings):
    """Bootstrap's intermediate model: its own, smaller and more regularised than a side's
    default head. Defaults of its own (not an instance's) so that a partial section in YAML
    keeps them."""

    arch: Literal["linear", "mlp", "cnn"] = "mlp"
    hidden: int = Field(8, ge=1)
    C: float = Field(0.1, gt=0, description="inverse L2 strength, scikit-learn's convention")
