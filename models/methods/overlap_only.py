"""``overlap_only``: Shin et al., cross-entropy on the bought points detected as overlap only."""

from __future__ import annotations

from typing import Literal

from models.methods.base import OVERLAP, LossMethod, MethodParams


class OverlapOnlyParams(MethodParams):
    name: Literal["overlap_only"] = "overlap_only"


class OverlapOnly(LossMethod):
    """Plain cross-entropy: the method is in its points, which the student's stage picks
    (``needs`` overlap)."""

    name = "overlap_only"
    Params = OverlapOnlyParams
    summary = "cross-entropy on the weak labels of the points detected as overlap only"
    needs = frozenset({OVERLAP})


METHOD = OverlapOnly()
