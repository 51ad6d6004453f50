"""Stage ``train_strong``: the W2S student on the bought points, by the configured method."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np

from models.csl import Level, class_blocks, teacher_of_class
from models.metrics import accuracy
from models.synthetic import OVERLAP
from tasks.data import load_array, load_split, save_array
from tasks.finetuning import concat, finetune_and_save, raw_inputs, rows_of
from tasks.fitting import fit_spec
from tasks.manifest import Manifest
from tasks.stage import StageOutput, cached_stage

if TYPE_CHECKING:
    from flows.config import BackboneConfig, Section, StrongConfig


@cached_stage
def train_strong(
    out: StageOutput,
    strong: StrongConfig,
    method: str,
    params: Section | None,
    seed: int,
    selection: Manifest,
    labels: Manifest,
    sources: list[Manifest],
    teachers: list[Manifest] = (),
    finetune: BackboneConfig | None = None,
) -> None:
    """``finetune``: the backbone to fine-tune on the bought points' raw inputs (loss-based
    methods only), instead of a ``strong`` head on their features."""
    from models.methods import StudentData, student_loss, student_targets, train_student
    from models.labels import one_hot
    from models.training import predict_probs, save_classifier

    taken = [load_array(selection, f"taken_{i}") for i in range(len(sources))]
    if method == "overlap_only":
        taken = [t[load_array(selection, f"groups_{i}") == OVERLAP] for i, t in enumerate(taken)]
    pools = [load_split([s], "w2s_train") for s in sources]
    x = np.concatenate([p.x[t] for p, t in zip(pools, taken)])
    if len(x) == 0:
        raise ValueError(f"method '{method}' left no training points (no overlap was detected)")
    val, test = load_split(sources, "val"), load_split(sources, "test")
    # weak_val never looks at ground truth; oracle_val does, and every report says so.
    oracle = strong.select_on == "oracle_val"
    data = StudentData(
        x=x,
        weak_probs=np.concatenate([load_array(labels, f"pool_probs_{i}")[t] for i, t in enumerate(taken)]),
        x_val=val.x,
        val_targets=one_hot(val.label, val.n_classes) if oracle else load_array(labels, "val_probs"),
        oracle=oracle,
    )
    raw = params.model_dump() if params is not None else {}
    # Part of the artifacts' fingerprint, so that two students with identical weights but
    # different methods or selection modes are never confused downstream (evaluate's cache).
    out.path("student.json").write_text(json.dumps({"method": method, "select_on": strong.select_on}))
    if finetune is not None:
        inputs = concat([rows_of(p, t) for p, t in zip(raw_inputs(sources, "w2s_train"), taken)])
        targets, val_targets = student_targets(method, raw, data)
        probs = finetune_and_save(
            out, finetune, seed, inputs, targets, concat(raw_inputs(sources, "val")), val_targets,
            concat(raw_inputs(sources, "test")), loss_fn=student_loss(method, raw),
        )
        out.facts.update(method=method, select_on=strong.select_on, test_acc=accuracy(probs, test.label))
        return
    spec = fit_spec(strong)
    extra = {}
    if method == "bootstrap":
        extra["intermediate"] = fit_spec(params.intermediate)
    if method == "csl":
        extra["levels"] = _levels(params, labels, teachers, taken, val, val.n_classes)
    result, facts = train_student(method, raw, spec, data, seed, **extra)
    save_classifier(result, spec, out.path("model"))
    probs = predict_probs(result.net, test.x)
    save_array(out.dir, "test_probs", probs)
    out.histories[""] = result.history
    out.facts.update(
        method=method, select_on=strong.select_on, n_train=len(x), best_epoch=result.best_epoch,
        epochs_run=len(result.history), test_acc=accuracy(probs, test.label), **facts,
    )


def _levels(params, labels: Manifest, teachers: list[Manifest], taken: list[np.ndarray], val, n_classes: int) -> list[Level]:
    """The generalist (the weak model's labels) then each level of specialists, restricted to
    the bought points."""
    def teacher_probs(m: Manifest, name: str) -> np.ndarray:
        """``(teachers, points, classes)``; the weak model's labels are one teacher."""
        probs = load_array(m, name)
        return probs[None] if probs.ndim == 2 else probs

    def pool(m: Manifest) -> np.ndarray:
        return np.concatenate([teacher_probs(m, f"pool_probs_{i}")[:, t] for i, t in enumerate(taken)], axis=1)

    source = np.concatenate([np.full(len(t), i) for i, t in enumerate(taken)])
    levels = [Level(pool(labels), teacher_probs(labels, "val_probs"), owner=np.zeros(n_classes, np.int64))]
    for m in teachers:
        if params.by == "classes":
            owner = teacher_of_class(class_blocks(n_classes, int(m.facts["n_teachers"])), n_classes)
            levels.append(Level(pool(m), teacher_probs(m, "val_probs"), owner=owner))
        else:
            levels.append(Level(pool(m), teacher_probs(m, "val_probs"), pool_source=source, val_source=val.source))
    return levels
