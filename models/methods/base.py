"""What a strong-training method is: a name, typed parameters, what it needs from the
stages upstream of the student, how it fits a head on features and, if it can, what a
fine-tuned backbone learns from under it.

Kept light (numpy and pydantic): the config reads the methods' parameter types from the
registry, and a config is read long before anything trains. Training code is imported
where a method fits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

# What a method may need from upstream (``Method.needs``); the flow and the student's
# stage provide each, and nothing else ever asks for a method by name.
TEACHERS = "teachers"  # levels of specialised weak teachers (train_teachers), as ``Upstream.levels``
OVERLAP = "overlap"  # train only on the bought points detected as overlap


class MethodParams(BaseModel):
    """A method's parameters. ``name``, a Literal in each method's subclass, tells the
    methods apart in a config (``method: {name: aux_conf, alpha_max: 0.5}``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str

    def settled(self, n_classes: int | None, n_sources: int) -> MethodParams:
        """These parameters with any ``auto`` value settled for data of ``n_classes`` classes
        (None: known once the data is read) and ``n_sources`` sources: what the student's
        stage and its cache key see. A ValueError names the parameter the data rules out."""
        return self

    @classmethod
    def parameter_names(cls) -> list[str]:
        return [k for k in cls.model_fields if k != "name"]


@dataclass
class StudentData:
    """The student's training points and what supervises it.

    ``val_targets`` is what checkpoints are selected on: the supervisor's labels of val
    (``weak_val``), or ground truth (``oracle_val``, flagged by ``oracle``).
    """

    x: np.ndarray
    weak_probs: np.ndarray
    x_val: np.ndarray
    val_targets: np.ndarray
    oracle: bool = False


@dataclass
class Upstream:
    """What the stages upstream provide for a method's ``needs`` beyond the bought points."""

    levels: list = field(default_factory=list)  # TEACHERS: models.csl.Level, the generalist first


@dataclass(frozen=True)
class Supervision:
    """What a fine-tuned backbone learns from: training and validation targets, and the loss
    (None: soft cross-entropy)."""

    targets: np.ndarray
    val_targets: np.ndarray
    loss_fn: Any = None


class Method:
    """One strong-training method. Subclasses set the class attributes and ``fit``; a method
    that can teach a fine-tuned backbone also gives its ``supervision``."""

    name: ClassVar[str]
    Params: ClassVar[type[MethodParams]]
    summary: ClassVar[str]  # what the student learns from, in one line
    needs: ClassVar[frozenset[str]] = frozenset()
    # Why the method cannot fine-tune a backbone (it needs features), or None when it can.
    features_only: ClassVar[str | None] = None

    def fit(self, spec, data: StudentData, seed: int, params: MethodParams, upstream: Upstream) -> tuple[Any, dict]:
        """The student (a ``models.training.FitResult``) on ``data``'s features with recipe
        ``spec``, and the facts worth recording about how it was obtained."""
        raise NotImplementedError

    def supervision(self, params: MethodParams, data: StudentData) -> Supervision:
        raise ValueError(f"method '{self.name}' cannot fine-tune a backbone: {self.features_only}")


class LossMethod(Method):
    """A method that differs from plain cross-entropy only in its targets or its loss: any
    model that trains on a loss can learn by it, a head on features or a whole backbone."""

    def targets(self, params: MethodParams, data: StudentData) -> tuple[np.ndarray, np.ndarray]:
        """Training and validation targets: the weak soft labels, and val's as given."""
        return data.weak_probs, data.val_targets

    def loss(self, params: MethodParams):
        """The loss (``models.classifier.LossFn``); None is plain soft cross-entropy."""
        return None

    def supervision(self, params: MethodParams, data: StudentData) -> Supervision:
        targets, val_targets = self.targets(params, data)
        return Supervision(targets, val_targets, self.loss(params))

    def fit(self, spec, data, seed, params, upstream):
        from models.training import fit_classifier

        s = self.supervision(params, data)
        return fit_classifier(spec, data.x, s.targets, data.x_val, s.val_targets, seed, loss_fn=s.loss_fn), {}
