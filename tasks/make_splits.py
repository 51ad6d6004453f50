"""Stage ``make_splits``: a real dataset's rows split with the run's seed, in both views.

A benchmark task's hub test split is the run's test split as it is; its hub train split
is divided among weak_train, w2s_train and val. Other real data is pooled and divided
among all four.

The result has the layout every later stage reads (``features`` for the strong side,
``weak_features`` for the weak one: a hand-made view or the weak backbone's features, ``label``), plus ``row``, the row's index in the data
as read, and the raw ``text`` or ``pixels`` (what a fine-tuned backbone reads).
"""

from __future__ import annotations

import numpy as np

from models.splits import class_counts, split_rows
from models.views import add_noise, average_pool, hashed_bag_of_words
from tasks.artifacts import DatasetRows, Embedding, SourceSplits
from tasks.data import SPLITS, arrow_dataset
from tasks.errors import DataError
from tasks.specs import SplitScale, WeakView
from tasks.stage import StageOutput, cached_stage


@cached_stage(SourceSplits)
def make_splits(
    out: StageOutput, weak_view: WeakView, splits: SplitScale, balance: bool, seed: int, data: DatasetRows,
    embedded: Embedding | None, weak_embedded: Embedding | None = None,
) -> None:
    """``embedded``: the strong side's features (else the raw numeric input); ``weak_embedded``:
    the weak side's backbone's, its view (else ``weak_view`` of the raw input)."""
    from datasets import ClassLabel, Features, Sequence, Value

    label, row, inputs = data.rows()
    fixed_test = data.fixed_test()
    facts = data.info
    # Text always has a backbone (the config insists); other inputs may be their own features.
    strong = embedded.features if embedded is not None else inputs
    # The weak view's noise has a stream of its own: changing it must not move the split.
    if weak_embedded is not None:
        weak = weak_embedded.features
    else:
        weak = weak_features(weak_view, facts, inputs, np.random.default_rng([seed, 3]))
    rng = np.random.default_rng([seed, 2])
    # A benchmark task balanced at ingest (with the data's seed) is not cut again here.
    balance = balance and not facts.balanced_at_ingest
    usable = np.arange(len(label))
    for features in (embedded, weak_embedded):  # texts that fit each backbone's context, where long ones are dropped
        fitting = features.usable_rows() if features is not None else None
        if fitting is not None:
            usable = np.intersect1d(usable, fitting)
    fixed = None if fixed_test is None else fixed_test[usable]
    index = {name: usable[part] for name, part in split_rows(label[usable], fixed, splits.model_dump(), balance, rng).items()}
    # Raw numbers are put on one scale, fitted on the training rows only (never val / test).
    fit_rows = np.concatenate([index["weak_train"], index["w2s_train"]])
    per_column = facts.input_kind == "numeric"
    if embedded is None:
        strong = standardize(strong, fit_rows, per_column)
    if facts.input_kind != "text" and weak_embedded is None:
        weak = standardize(weak, fit_rows, per_column)
    names = facts.label_names
    columns = {
        "features": Sequence(Value("float32"), length=strong.shape[1]),
        "weak_features": Sequence(Value("float32"), length=weak.shape[1]),
        "label": ClassLabel(names=names),
        "row": Value("int64"),
    }
    if facts.input_kind == "text":
        columns["text"] = Value("string")
    elif facts.input_kind == "image":  # the raw pixels, for a backbone that is fine-tuned
        columns["pixels"] = Sequence(Value("float32"), length=inputs.shape[1])
    dd = {}
    for split in SPLITS:
        idx = index[split]
        if len(idx) == 0:
            in_all = sum(len(i) for i in index.values())
            raise DataError(f"data.splits: split '{split}' of source '{facts.source}' is empty ({in_all} rows in all)")
        values = {"features": strong[idx], "weak_features": weak[idx], "label": label[idx], "row": row[idx]}
        if "text" in columns:
            values["text"] = np.array([inputs[i] for i in idx], dtype=object)
        if "pixels" in columns:
            values["pixels"] = inputs[idx]
        dd[split] = arrow_dataset(values, Features(columns))
    SourceSplits.write(
        out, dd,
        source=facts.source,
        n_classes=len(names),
        label_names=names,
        sizes={s: len(d) for s, d in dd.items()},
        class_counts={s: class_counts(np.asarray(d.with_format("numpy")["label"]), len(names)) for s, d in dd.items()},
        balanced=balance or facts.balanced_at_ingest,
        dropped_long=int(len(label) - len(usable)),
        split_seed=seed,
        # Where the test rows come from, and what ingestion dropped: shown in the run's summary.
        test_from=f"hub split '{facts.hub_splits['test']}'" if fixed_test is not None else "the pooled rows",
        benchmark=facts.benchmark,
        revision=facts.revision,
        empty_dropped=sum(facts.empty_dropped.values()),
        d=int(strong.shape[1]),
        d_weak=int(weak.shape[1]),
        image_shape=facts.image_shape,
    )


def standardize(x: np.ndarray, fit_rows: np.ndarray, per_column: bool) -> np.ndarray:
    """Zero mean, unit variance on ``fit_rows``: per column for a table; one scale for an
    image's pixels, so that their spatial pattern is kept."""
    axis = 0 if per_column else None
    mean, std = x[fit_rows].mean(axis=axis), x[fit_rows].std(axis=axis)
    return ((x - mean) / np.where(std > 0, std, 1.0)).astype(np.float32)


def weak_features(view: WeakView, facts: DatasetRows.Facts, inputs, rng: np.random.Generator) -> np.ndarray:
    kind = view.kind
    if kind == "auto":
        kind = {"text": "bow", "image": "pool", "numeric": "same"}[facts.input_kind]
    if (kind == "bow") != (facts.input_kind == "text"):
        raise ValueError(f"data.weak_view.kind: '{kind}' does not apply to {facts.input_kind} input")
    if kind == "bow":
        x = hashed_bag_of_words(inputs, view.buckets)
    elif kind == "pool":
        if facts.input_kind != "image":
            raise ValueError(f"data.weak_view.kind: 'pool' needs images, the source has {facts.input_kind} input")
        shape = facts.image_shape
        images = inputs.reshape(len(inputs), *shape)
        if images.ndim == 4:  # colour: pool the channels' mean
            images = images.mean(axis=-1)
        x = average_pool(images, view.pool)
    elif kind == "columns":
        names = facts.feature_names
        missing = [c for c in view.columns if c not in names]
        if missing:
            raise ValueError(f"data.weak_view.columns: '{missing[0]}' is not a feature column (features: {', '.join(names)})")
        x = inputs[:, [names.index(c) for c in view.columns]]
    else:
        x = inputs
    return add_noise(np.asarray(x, dtype=np.float32), view.noise, rng)


def check_same_classes(sources: list[SourceSplits]) -> None:
    """Sources cut from different files must name the same classes: labels are pooled by
    class code, so ``yes/no`` in one file and ``no/yes`` or ``pos/neg`` in another would mix.
    (A plan's placeholders for splits not made yet have no facts: nothing to check.)"""
    facts = [m.info for m in sources if m.facts]
    named = [(f.source, f.label_names) for f in facts if f.label_names is not None]
    for name, labels in named[1:]:
        if labels != named[0][1]:
            raise DataError(
                f"data.sources: source '{name}' has classes {labels}, source '{named[0][0]}' has {named[0][1]}"
            )
