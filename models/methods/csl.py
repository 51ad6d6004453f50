"""``csl``: Liu & Alahi's co-supervision by specialised weak teachers (models/csl.py)."""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from models.methods.base import TEACHERS, Method, MethodParams


class CslParams(MethodParams):
    """Levels of 1, 2, 4, … specialists, by class block or by source.

    ``by: auto`` is ``classes`` when the data has enough classes (as many as the largest
    level of explicit ``teachers``; for ``teachers: auto`` at least ``MIN_CLASSES_FOR_BLOCKS``,
    two blocks of two) or its class count is known only once it is read (a real dataset),
    else ``sources`` when the run has several. ``teachers: auto`` is 1, 2, 4 by classes
    (the levels the classes allow) and 1 then one per source by sources. Explicit values
    are kept as given and checked against the data.
    """

    name: Literal["csl"] = "csl"
    teachers: Literal["auto"] | tuple[int, ...] = "auto"
    by: Literal["auto", "classes", "sources"] = "auto"
    top_k: int = Field(3, ge=1, description="teacher-student consistency: the student's top-k classes")
    local_global: bool = Field(False, description="also reject targets where a specialist contradicts its parent")
    hard: bool = Field(False, description="train on the teachers' argmax instead of their soft labels")

    MIN_CLASSES_FOR_BLOCKS: ClassVar[int] = 4
    CLASS_LEVELS: ClassVar[tuple[int, ...]] = (1, 2, 4)

    @model_validator(mode="after")
    def _levels(self):
        t = self.teachers
        if t != "auto" and (not t or t[0] != 1 or any(b <= a for a, b in zip(t, t[1:]))):
            raise ValueError(f"teachers: levels must start at 1 and grow, e.g. (1, 2, 4); got {list(t)}")
        return self

    def settled(self, n_classes: int | None, n_sources: int) -> CslParams:
        by = self.by
        if by == "auto":
            needed = self.MIN_CLASSES_FOR_BLOCKS if self.teachers == "auto" else self.teachers[-1]
            if n_classes is None or n_classes >= needed:
                by = "classes"
            elif n_sources > 1:
                by = "sources"
            else:
                raise ValueError(
                    f"method.by: auto finds no specialists for this data ({n_classes} classes, "
                    f"fewer than {needed}, and one source); set method.by or method.teachers"
                )
        teachers = self.teachers
        if teachers == "auto":
            if by == "sources":
                teachers = (1, n_sources)
            else:
                teachers = tuple(t for t in self.CLASS_LEVELS if n_classes is None or t <= n_classes)
        if by == "classes" and n_classes is not None and teachers[-1] > n_classes:
            raise ValueError(f"method.teachers: {teachers[-1]} teachers but the data has {n_classes} classes")
        if by == "sources" and teachers != (1, n_sources):
            raise ValueError(
                f"method.teachers: by=sources needs levels (1, {n_sources}) "
                f"(one specialist per source), got {list(teachers)}"
            )
        return self.model_copy(update={"by": by, "teachers": teachers})

    def specialist_levels(self) -> tuple[int, ...]:
        """The teacher counts of the specialist levels (settled parameters): one
        ``train_teachers`` stage each, the generalist being the weak model itself."""
        return tuple(self.teachers[1:])


class Csl(Method):
    """Level by level, the previous student assigns each point to a specialist, the
    implausible targets are dropped and a fresh student learns from the rest."""

    name = "csl"
    Params = CslParams
    summary = "co-supervision by levels of weak specialists (class blocks or sources), denoised by the student"
    needs = frozenset({TEACHERS})
    features_only = "it trains a fresh student on features at every level of teachers"

    def fit(self, spec, data, seed, params, upstream):
        from models.csl import StudentFit, co_supervise
        from models.training import fit_classifier, predict_probs

        def student(keep, targets, val_targets, epochs):
            val = data.val_targets if data.oracle else val_targets
            result = fit_classifier(replace(spec, epochs=epochs), data.x[keep], targets, data.x_val, val, seed)
            return StudentFit(predict_probs(result.net, data.x), predict_probs(result.net, data.x_val), result)

        outcome = co_supervise(
            upstream.levels, student, spec.epochs, spec.batch_size or None,
            top_k=params.top_k, local_global=params.local_global, hard=params.hard,
        )
        facts = {
            f"level{i}": {"teachers": r.teachers, "kept": r.kept, "consistency": r.consistency,
                          "local_global_rejected": r.local_global_rejected, "epochs": r.epochs}
            for i, r in enumerate(outcome.levels)
        }
        return outcome.student.result, facts


METHOD = Csl()
