"""The edges of the experiment DAG: one small class per kind of artifact a stage passes on.

Each kind is a :class:`Manifest` (what Prefect caches: where the folder is, its content
fingerprint, its facts) that also owns the folder's layout: ``write`` puts the files and
the facts in place inside a stage, and its readers give them back, shaped and typed, to the
stages and flows downstream. Nothing else spells an artifact's file names or fact keys.
A stage declares the kind it produces (``@cached_stage(WeakLabels)``), so a manifest
handed to the wrong parameter is refused by name, not found out from a missing file.
The studies' kinds are in tasks/grid_artifacts.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from tasks.data import Split, arrow_dataset, column_array, load_array, save_array, save_dataset_dict
from tasks.manifest import Manifest

if TYPE_CHECKING:
    from tasks.real_data import Rows
    from tasks.stage import StageOutput


class Facts(BaseModel):
    """A kind's facts: checked when a stage writes them, typed when they are read."""

    model_config = ConfigDict(frozen=True, extra="ignore")  # the stage adds seconds and attempts


class Artifact(Manifest):
    """A manifest of one kind: ``Facts`` says what its facts are."""

    Facts: ClassVar[type[Facts]] = Facts

    @property
    def info(self) -> Any:
        """The facts as the kind's ``Facts`` (typed attributes instead of keys)."""
        return self.Facts.model_validate(self.facts)

    @classmethod
    def record(cls, out: StageOutput, **facts: Any) -> None:
        """Check ``facts`` with those already recorded, then add them (a stage may record in steps)."""
        checked = cls.Facts(**{**out.facts, **facts}).model_dump(mode="json", exclude_unset=True)
        out.facts.update({k: v for k, v in checked.items() if k in facts})


# --- data ----------------------------------------------------------------------------------


class SourceSplits(Artifact):
    """One source's four splits, a ``datasets`` folder: ``features`` (what the strong side
    reads), ``weak_features`` (the weak view), ``label``; ``group`` where the data is
    generated (easy / hard / overlap); ``row`` and the raw ``text`` or ``pixels`` where it
    is real (what a fine-tuned backbone reads)."""

    class Facts(Facts):
        source: str
        n_classes: int
        sizes: dict[str, int]
        true_overlap_density: float | None = None  # generated sources of the synthetic task
        label_names: list[str] | None = None
        class_counts: dict[str, list[int]] | None = None
        image_shape: list[int] | None = None
        d: int | None = None
        d_weak: int | None = None
        balanced: bool | None = None
        split_seed: int | None = None
        test_from: str | None = None  # where a real source's test rows come from
        benchmark: str | None = None
        revision: str | None = None
        empty_dropped: int | None = None
        dropped_long: int | None = None

    @classmethod
    def write(cls, out: StageOutput, splits: dict, **facts: Any) -> None:
        """``splits``: ``datasets.Dataset`` per split name, in the layout above."""
        save_dataset_dict(splits, out.dir)
        cls.record(out, **facts)

    def split(self, name: str) -> Split:
        return splits_of([self], name)

    def raw_inputs(self, split: str) -> list[str] | np.ndarray:
        """The split's raw texts, or its images ``(n, H, W[, C])``, in row order."""
        table = self._table(split)
        if "text" in table.column_names:
            return table.column("text").to_pylist()
        if "pixels" in table.column_names:
            return column_array(table, "pixels").reshape(-1, *self.info.image_shape)
        raise ValueError(f"a fine-tuned backbone needs text or images; source '{self.name}' has numeric features")

    def _table(self, split: str):
        from datasets import load_from_disk

        return load_from_disk(str(self.dir))[split].with_format("arrow")[:]

    @property
    def name(self) -> str:
        return self.info.source


def splits_of(sources: list[SourceSplits], split: str) -> Split:
    """``split`` of every source, concatenated in source order (``Split.source`` says whose)."""
    tables = [m._table(split) for m in sources]
    groups = [column_array(t, "group") if "group" in t.column_names else None for t in tables]
    labels = [column_array(t, "label") for t in tables]
    return Split(
        x=np.concatenate([column_array(t, "features") for t in tables]).astype(np.float32),
        x_weak=np.concatenate([column_array(t, "weak_features") for t in tables]).astype(np.float32),
        label=np.concatenate(labels).astype(np.int64),
        group=None if any(g is None for g in groups) else np.concatenate(groups).astype(np.int64),
        source=np.concatenate([np.full(len(y), i) for i, y in enumerate(labels)]),
        n_classes=max(m.info.n_classes for m in sources),
    )


class DatasetRows(Artifact):
    """A real dataset's selected rows, read once: ``label``, ``row`` and the input (``text``,
    or ``input``: numeric features or flattened images), and ``fixed_test`` where the data
    comes with its own test split (a benchmark task's hub test split)."""

    class Facts(Facts):
        source: str
        n_rows: int
        n_classes: int
        label_names: list[str]
        class_counts: list[int]
        input_kind: str  # text, image or numeric
        feature_names: list[str] = []
        image_shape: list[int] | None = None
        data_fingerprint: str
        # A benchmark task's (tasks/benchmark_data.py): where its rows came from, how they were made.
        benchmark: str | None = None
        hub: str | None = None
        hub_config: str | None = None
        revision: str | None = None
        local_copy: str | None = None
        protocol: str | None = None
        hub_splits: dict[str, str] | None = None
        rows_read: dict[str, int] | None = None
        empty_dropped: dict[str, int] = {}
        rows_kept: dict[str, int] | None = None
        balanced_at_ingest: bool = False
        data_seed: int | None = None

    ROWS: ClassVar[str] = "rows"

    @classmethod
    def write(cls, out: StageOutput, rows: Rows, **facts: Any) -> None:
        from datasets import ClassLabel, Features, Sequence, Value

        columns = {"label": rows.label, "row": rows.row}
        features = {"label": ClassLabel(names=rows.label_names), "row": Value("int64")}
        if rows.test is not None:
            columns["fixed_test"], features["fixed_test"] = rows.test, Value("bool")
        if rows.text is not None:
            columns["text"], features["text"] = np.array(rows.text, dtype=object), Value("string")
        else:
            x = rows.features if rows.features is not None else rows.images.reshape(len(rows.label), -1)
            columns["input"], features["input"] = x, Sequence(Value("float32"), length=x.shape[1])
        arrow_dataset(columns, Features(features)).save_to_disk(str(out.path(cls.ROWS)))
        cls.record(
            out, n_rows=len(rows.label), n_classes=len(rows.label_names), label_names=rows.label_names,
            class_counts=np.bincount(rows.label, minlength=len(rows.label_names)).tolist(), input_kind=rows.input_kind,
            feature_names=list(rows.feature_names),
            image_shape=list(rows.images.shape[1:]) if rows.images is not None else None, **facts,
        )

    def _table(self):
        from datasets import load_from_disk

        return load_from_disk(str(self.file(self.ROWS))).with_format("arrow")[:]

    def rows(self) -> tuple[np.ndarray, np.ndarray, list[str] | np.ndarray]:
        """Labels, row ids and the input (texts, or an ``(n, d)`` array; images flattened)."""
        table = self._table()
        inputs = table.column("text").to_pylist() if "text" in table.column_names else column_array(table, "input")
        return column_array(table, "label").astype(np.int64), column_array(table, "row"), inputs

    def fixed_test(self) -> np.ndarray | None:
        """Which rows form a fixed test split, or None: every split is drawn from the rows."""
        table = self._table()
        return column_array(table, "fixed_test").astype(bool) if "fixed_test" in table.column_names else None


class Embedding(Artifact):
    """A frozen backbone's features of every row, ``(n, hidden)``, and which texts do not fit
    its context (``too_long``, for Burns et al.'s drop rule)."""

    class Facts(Facts):
        source: str
        n: int
        dim: int
        device: str
        items_per_second: float
        pooling: str | None = None
        max_length: int | None = None
        texts_too_long: int | None = None
        texts_cut: int | None = None
        drop_long: bool = False

    @classmethod
    def write(cls, out: StageOutput, features: np.ndarray, too_long: np.ndarray | None, **facts: Any) -> None:
        save_array(out.dir, "features", features)
        if too_long is not None:
            save_array(out.dir, "too_long", too_long)
        cls.record(out, n=len(features), dim=int(features.shape[1]), **facts)

    @property
    def features(self) -> np.ndarray:
        return load_array(self, "features")

    def usable_rows(self) -> np.ndarray | None:
        """Row indices the split may use when long texts are dropped, else None (all)."""
        return np.flatnonzero(~load_array(self, "too_long")) if self.info.drop_long else None


# --- models and their labels ---------------------------------------------------------------


class TrainedModel(Artifact):
    """A trained classifier (``model/``: a head on features, or a fine-tuned backbone) and its
    test probabilities ``(n_test, k)``, row-aligned with the sources' test splits."""

    class Facts(Facts):
        test_acc: float | None = None
        n_train: int | None = None
        best_epoch: int | None = None
        epochs_run: int | None = None
        finetuned: bool = False  # a fine-tuned backbone (reads raw inputs), not a head on features
        precision: str | None = None
        input_range: list[float] | None = None  # the training images' range, how it scales images

    MODEL: ClassVar[str] = "model"

    @classmethod
    def model_path(cls, out: StageOutput) -> Path:
        """Where a stage saves the model it trained (models.training's or models.finetune's saver)."""
        return out.path(cls.MODEL)

    @classmethod
    def write_fit(cls, out: StageOutput, test_probs: np.ndarray, history: list[dict], best_epoch: int, **facts: Any) -> None:
        """The rest of a fit, once its model is saved: test probabilities, history, facts."""
        save_array(out.dir, "test_probs", test_probs)
        out.histories[""] = history
        cls.record(out, best_epoch=best_epoch, epochs_run=len(history), **facts)

    @property
    def model_dir(self) -> Path:
        return self.file(self.MODEL)

    @property
    def test_probs(self) -> np.ndarray:
        return load_array(self, "test_probs")


class Student(TrainedModel):
    """The W2S student: a trained model, plus the method that trained it and how its epoch
    was chosen (in ``student.json`` too, so that two students with equal weights but other
    methods never share a fingerprint, nor an evaluation's cache entry)."""

    class Facts(TrainedModel.Facts):
        model_config = ConfigDict(extra="allow")  # and what the method reports (csl's levels, …)

        method: str
        select_on: str

    @classmethod
    def write_identity(cls, out: StageOutput, method: str, select_on: str) -> None:
        out.path("student.json").write_text(json.dumps({"method": method, "select_on": select_on}))


class WeakLabels(Artifact):
    """One teacher's soft labels: ``(n_i, k)`` on each source's pool and ``(n_val, k)`` on val."""

    class Facts(Facts):
        pool_sizes: list[int]

    @classmethod
    def write(cls, out: StageOutput, pool: list[np.ndarray], val: np.ndarray) -> None:
        _check_probs(pool + [val], ndim=2)
        for i, probs in enumerate(pool):
            save_array(out.dir, f"pool_probs_{i}", probs)
        save_array(out.dir, "val_probs", val)
        cls.record(out, pool_sizes=[len(p) for p in pool])

    def pool(self, source: int) -> np.ndarray:
        return load_array(self, f"pool_probs_{source}")

    @property
    def val(self) -> np.ndarray:
        return load_array(self, "val_probs")


class TeacherLabels(Artifact):
    """One level of specialised teachers' soft labels: ``(m, n_i, k)`` on each source's pool
    and ``(m, n_val, k)`` on val, teacher by teacher."""

    class Facts(Facts):
        n_teachers: int
        by: str
        blocks: list[list[int]] | None = None
        test_acc_in_block: list[float]
        mean_test_acc_in_block: float

    @classmethod
    def write(cls, out: StageOutput, pool: list[np.ndarray], val: np.ndarray, **facts: Any) -> None:
        _check_probs(pool + [val], ndim=3)
        for i, probs in enumerate(pool):
            save_array(out.dir, f"pool_probs_{i}", probs)
        save_array(out.dir, "val_probs", val)
        cls.record(out, **facts)

    def pool(self, source: int) -> np.ndarray:
        return load_array(self, f"pool_probs_{source}")

    @property
    def val(self) -> np.ndarray:
        return load_array(self, "val_probs")


def _check_probs(arrays: list[np.ndarray], ndim: int) -> None:
    for a in arrays:
        if a.ndim != ndim:
            raise ValueError(f"soft labels of shape {a.shape}: expected {ndim} dimensions")


# --- overlap and selection -----------------------------------------------------------------


class OverlapDiagnostic(Artifact):
    """A diagnostic: the detector run on each source's whole pool, to report the overlap
    density it finds (and, where the data is generated, how well: precision, recall, F1
    against the true groups). Selection detects again round by round on what it has bought;
    no stage trains on these groups, kept (``groups_{i}``) for inspection."""

    class Facts(Facts):
        detector: str
        sources: list[dict[str, Any]]  # per source: its name, density, thresholds and scores

    @classmethod
    def write(cls, out: StageOutput, detector: str, groups: list[np.ndarray], rows: list[dict[str, Any]]) -> None:
        for i, g in enumerate(groups):
            save_array(out.dir, f"groups_{i}", g)
        cls.record(out, detector=detector, sources=rows)

    def groups(self, source: int) -> np.ndarray:
        return load_array(self, f"groups_{source}")


class Selection(Artifact):
    """What selection bought: for each source, the pool rows taken (``taken``, in the order
    bought) and the groups the last round's detection gave them; the per-round trace."""

    class Facts(Facts):
        policy: str
        points_per_source: dict[str, int]
        estimated_density: dict[str, float]
        cumulative_regret: float | None = None

    @classmethod
    def write(cls, out: StageOutput, taken: list[np.ndarray], groups: list[np.ndarray], trace: list[dict], **facts: Any) -> None:
        for i, (t, g) in enumerate(zip(taken, groups)):
            if len(t) != len(g):
                raise ValueError(f"source {i}: {len(t)} points taken but {len(g)} groups")
            save_array(out.dir, f"taken_{i}", t)
            save_array(out.dir, f"groups_{i}", g)
        out.path("trace.json").write_text(json.dumps(trace))
        cls.record(out, **facts)

    def taken(self, source: int) -> np.ndarray:
        return load_array(self, f"taken_{source}")

    def groups(self, source: int) -> np.ndarray:
        return load_array(self, f"groups_{source}")

    @property
    def trace(self) -> list[dict]:
        return json.loads(self.file("trace.json").read_text())


# --- evaluation ----------------------------------------------------------------------------


class Evaluation(Artifact):
    """The experiment's test figures (``metrics.json``: accuracy, AUROC, PGR, per group,
    agreement) and the accuracy-by-group plot."""

    class Facts(Facts):
        metrics: dict[str, Any]
        n_test: int
        select_on: str | None = None

    PLOT: ClassVar[str] = "accuracy_by_group.png"

    @classmethod
    def write(cls, out: StageOutput, metrics: dict[str, Any], plot, **facts: Any) -> None:
        """``plot(path)`` draws the figure."""
        out.path("metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
        plot(out.path(cls.PLOT))
        out.plots.append(cls.PLOT)
        cls.record(out, metrics=metrics, **facts)

    @property
    def plot(self) -> Path:
        return self.file(self.PLOT)
