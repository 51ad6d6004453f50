"""Stage ``train_strong``: the W2S student on the bought points, by the configured method."""

from __future__ import annotations

import numpy as np

from models.csl import Level, class_blocks, teacher_of_class
from models.methods import METHODS, OVERLAP, TEACHERS, MethodParams, StudentData, Upstream, fit_student
from models.metrics import accuracy
from models.synthetic import OVERLAP as OVERLAP_GROUP
from models.head import fit_spec
from tasks.artifacts import Selection, SourceSplits, Student, TeacherLabels, WeakLabels, splits_of
from tasks.finetuning import concat, finetune_and_save, raw_inputs, rows_of
from tasks.fitting import save_fit
from tasks.specs import BackboneConfig, StrongConfig
from tasks.stage import StageOutput, cached_stage


@cached_stage(Student)
def train_strong(
    out: StageOutput,
    strong: StrongConfig,
    method: MethodParams,
    seed: int,
    selection: Selection,
    labels: WeakLabels,
    sources: list[SourceSplits],
    teachers: list[TeacherLabels] = (),
    finetune: BackboneConfig | None = None,
) -> None:
    """``method``: the chosen method's parameters, settled for the data (its ``name`` says
    which method). ``teachers``: the specialist levels, for a method that needs them.
    ``finetune``: the backbone to fine-tune on the bought points' raw inputs (methods that
    can teach one), instead of a ``strong`` head on their features."""
    from models.labels import one_hot
    from models.training import predict_probs

    learner = METHODS[method.name]
    taken = [selection.taken(i) for i in range(len(sources))]
    if OVERLAP in learner.needs:
        taken = [t[selection.groups(i) == OVERLAP_GROUP] for i, t in enumerate(taken)]
    pools = [s.split("w2s_train") for s in sources]
    x = np.concatenate([p.x[t] for p, t in zip(pools, taken)])
    if len(x) == 0:
        raise ValueError(f"method '{method.name}' left no training points (no overlap was detected)")
    val, test = splits_of(sources, "val"), splits_of(sources, "test")
    # weak_val never looks at ground truth; oracle_val does, and every report says so.
    oracle = strong.select_on == "oracle_val"
    data = StudentData(
        x=x,
        weak_probs=np.concatenate([labels.pool(i)[t] for i, t in enumerate(taken)]),
        x_val=val.x,
        val_targets=one_hot(val.label, val.n_classes) if oracle else labels.val,
        oracle=oracle,
    )
    Student.write_identity(out, method.name, strong.select_on)
    Student.record(out, method=method.name, select_on=strong.select_on)
    if finetune is not None:
        inputs = concat([rows_of(p, t) for p, t in zip(raw_inputs(sources, "w2s_train"), taken)])
        taught = learner.supervision(method, data)
        probs = finetune_and_save(
            out, finetune, seed, inputs, taught.targets, concat(raw_inputs(sources, "val")), taught.val_targets,
            concat(raw_inputs(sources, "test")), loss_fn=taught.loss_fn,
        )
        Student.record(out, test_acc=accuracy(probs, test.label))
        return
    spec = fit_spec(strong)
    upstream = Upstream()
    if TEACHERS in learner.needs:
        upstream.levels = _levels(method, labels, teachers, taken, val, val.n_classes)
    result, facts = fit_student(spec, data, seed, method, upstream)
    probs = predict_probs(result.net, test.x)
    save_fit(out, result, spec, probs, n_train=len(x), test_acc=accuracy(probs, test.label), **facts)


def _levels(
    params, labels: WeakLabels, teachers: list[TeacherLabels], taken: list[np.ndarray], val, n_classes: int
) -> list[Level]:
    """The generalist (the weak model: a level of one teacher) then each level of specialists
    (``params.by``: class blocks or sources),
    restricted to the bought points; probabilities ``(teachers, points, classes)``."""
    source = np.concatenate([np.full(len(t), i) for i, t in enumerate(taken)])
    generalist = np.concatenate([labels.pool(i)[t] for i, t in enumerate(taken)])
    levels = [Level(generalist[None], labels.val[None], owner=np.zeros(n_classes, np.int64))]
    for m in teachers:
        pool = np.concatenate([m.pool(i)[:, t] for i, t in enumerate(taken)], axis=1)
        if params.by == "classes":
            owner = teacher_of_class(class_blocks(n_classes, m.info.n_teachers), n_classes)
            levels.append(Level(pool, m.val, owner=owner))
        else:
            levels.append(Level(pool, m.val, pool_source=source, val_source=val.source))
    return levels
