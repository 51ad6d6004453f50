"""``product``: Burns et al.'s product loss (their code's ``product_loss_fn``;
models.losses.ProductLoss)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from models.methods.base import LossMethod, MethodParams


class ProductParams(MethodParams):
    """Target ∝ student^beta · weak^alpha; their defaults, 1 and 1."""

    name: Literal["product"] = "product"
    alpha: float = Field(1.0, ge=0)
    beta: float = Field(1.0, ge=0)


class Product(LossMethod):
    name = "product"
    Params = ProductParams
    summary = "cross-entropy against student^β · weak^α, renormalised"

    def loss(self, params):
        from models.losses import ProductLoss

        return ProductLoss(alpha=params.alpha, beta=params.beta)


METHOD = Product()
