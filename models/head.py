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

    def fit_spec(self):
        """The fitting recipe these settings describe (models.training.FitSpec)."""
        from models.training import FitSpec

        return FitSpec(**{k: getattr(self, k) for k in HeadSettings.model_fields})
