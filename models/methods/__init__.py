"""The strong-training methods: how a W2S student learns from its weak supervision.

One module per method, each with a ``METHOD`` (models/methods/base.py says what one is),
and this registry. Adding a method is one module here and its name below (import and list);
the config's ``method`` choices, the command line and the tests that run every method
follow from it.
"""

from __future__ import annotations

from models.methods import (
    adapt_conf, aux_conf, bootstrap, csl, overlap_only, probe_filter, product, xent, xent_hard,
)
from models.methods.base import OVERLAP, TEACHERS, Method, MethodParams, StudentData, Supervision, Upstream

METHODS: dict[str, Method] = {m.name: m for m in (
    xent.METHOD,
    xent_hard.METHOD,
    aux_conf.METHOD,
    adapt_conf.METHOD,
    product.METHOD,
    probe_filter.METHOD,
    overlap_only.METHOD,
    bootstrap.METHOD,
    csl.METHOD,
)}


def fit_student(spec, data: StudentData, seed: int, params: MethodParams, upstream: Upstream | None = None):
    """The student of the method ``params`` belongs to (``params.name``): ``(FitResult, facts)``."""
    return METHODS[params.name].fit(spec, data, seed, params, upstream or Upstream())


__all__ = [
    "METHODS", "OVERLAP", "TEACHERS", "Method", "MethodParams", "StudentData", "Supervision", "Upstream", "fit_student",
]
