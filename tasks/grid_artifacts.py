"""The studies' edges: what their grid stages pass on, one kind per artifact, as in
tasks/artifacts.py. A study fits every cell of its grid (every grid point and seed) at
once, so each array here holds all cells, row-aligned with the grid's splits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import numpy as np
from pydantic import ConfigDict

from tasks.artifacts import Artifact, Facts
from tasks.data import GridSplit, load_array, load_grid_split, save_array, save_dataset_dict

if TYPE_CHECKING:
    from tasks.stage import StageOutput


class GridData(Artifact):
    """Every cell of a study as one ``datasets`` folder (``weak_train``, ``w2s_train``,
    ``test``; rows tagged by ``cell`` and by ``source`` within it), and the cells' index:
    for each, its seed, grid point and the true overlap density of each source's pool."""

    class Facts(Facts):
        n_cells: int
        d_easy: int
        n_classes: int
        sizes: dict[str, int]

    @classmethod
    def write(cls, out: StageOutput, splits: dict, cells: list[dict], **facts: Any) -> None:
        save_dataset_dict(splits, out.dir)
        out.path("cells.json").write_text(json.dumps(cells))
        cls.record(out, n_cells=len(cells), sizes={k: len(v) for k, v in splits.items()}, **facts)

    def split(self, name: str) -> GridSplit:
        return load_grid_split(self, name, self.info.d_easy)

    @property
    def cells(self) -> list[dict]:
        return json.loads(self.file("cells.json").read_text())


class GridModel(Artifact):
    """One model per cell, fitted on ground truth (the weak model or the ceiling): test
    probabilities of every cell's test rows, and for the weak model its labels of every
    cell's pool (``pool_probs``), row-aligned with the grid's splits."""

    class Facts(Facts):
        view: str
        n_cells: int
        test_acc: float

    @classmethod
    def write(cls, out: StageOutput, test_probs: np.ndarray, pool_probs: np.ndarray | None, **facts: Any) -> None:
        save_array(out.dir, "test_probs", test_probs)
        if pool_probs is not None:
            save_array(out.dir, "pool_probs", pool_probs)
        cls.record(out, **facts)

    @property
    def test_probs(self) -> np.ndarray:
        return load_array(self, "test_probs")

    @property
    def pool_probs(self) -> np.ndarray:
        return load_array(self, "pool_probs")


class GridStudent(Artifact):
    """One W2S student per cell: test probabilities, and how many pool points each trained on."""

    class Facts(Facts):
        subset: str
        weak_labels: str
        test_acc: float
        cells_without_points: int

    @classmethod
    def write(cls, out: StageOutput, test_probs: np.ndarray, trained_on: np.ndarray, **facts: Any) -> None:
        save_array(out.dir, "test_probs", test_probs)
        out.path("trained_on.json").write_text(json.dumps(trained_on.tolist()))
        cls.record(out, cells_without_points=int(np.sum(trained_on == 0)), **facts)

    @property
    def test_probs(self) -> np.ndarray:
        return load_array(self, "test_probs")


class GridDetection(Artifact):
    """Overlap detection on every cell's pool: the groups, row-aligned with the pool, and
    each cell's density and scores against the true groups."""

    class Facts(Facts):
        detector: str
        mean_overlap_f1: float
        mean_hard_f1: float

    @classmethod
    def write(cls, out: StageOutput, detector: str, groups: np.ndarray, per_cell: list[dict]) -> None:
        save_array(out.dir, "groups", groups)
        out.path("per_cell.json").write_text(json.dumps(per_cell))
        cls.record(
            out, detector=detector, mean_overlap_f1=float(np.mean([c["overlap_f1"] for c in per_cell])),
            mean_hard_f1=float(np.mean([c["hard_f1"] for c in per_cell])),
        )

    @property
    def groups(self) -> np.ndarray:
        return load_array(self, "groups")

    @property
    def per_cell(self) -> list[dict]:
        return json.loads(self.file("per_cell.json").read_text())


class GridSelection(Artifact):
    """One policy's selection on every seed's sources, round by round, all ``(seeds, rounds)``:
    the arm pulled, the estimated densities (``(seeds, rounds, sources)``), the cumulative
    regret and the true overlap points bought."""

    class Facts(Facts):
        policy: str
        final_regret: float
        final_true_overlap: float
        pulls_per_source: list[int]

    SERIES: ClassVar[tuple[str, ...]] = ("arms", "estimates", "regret", "true_overlap")

    @classmethod
    def write(cls, out: StageOutput, series: dict[str, np.ndarray], **facts: Any) -> None:
        for name in cls.SERIES:
            save_array(out.dir, name, np.asarray(series[name]))
        cls.record(out, **facts)

    def series(self, name: str) -> np.ndarray:
        if name not in self.SERIES:
            raise KeyError(f"a selection has {', '.join(self.SERIES)}, not {name}")
        return load_array(self, name)


class RoundStudents(Artifact):
    """After every round of a policy, the W2S student on what it had bought: test accuracy ``(seeds, rounds)``."""

    class Facts(Facts):
        final_test_acc: float

    @classmethod
    def write(cls, out: StageOutput, test_acc: np.ndarray) -> None:
        save_array(out.dir, "test_acc", test_acc)
        cls.record(out, final_test_acc=float(test_acc[:, -1].mean()))

    @property
    def test_acc(self) -> np.ndarray:
        return load_array(self, "test_acc")


class StudyReport(Artifact):
    """A study's or sweep's report: the table (``STEM.md``), its data (``STEM.json``) and a
    figure (``STEM.png``, unless there was nothing to draw)."""

    class Facts(Facts):
        model_config = ConfigDict(extra="allow")  # and the study's own headline counts

        stem: str

    @classmethod
    def write(cls, out: StageOutput, stem: str, table: str, data: dict, plot: Callable[[Path], None] | None,
              **facts: Any) -> None:
        out.path(f"{stem}.md").write_text(table if table.endswith("\n") else table + "\n")
        out.path(f"{stem}.json").write_text(json.dumps(data, indent=1))
        if plot is not None:
            plot(out.path(f"{stem}.png"))
            out.plots.append(f"{stem}.png")
        cls.record(out, stem=stem, **facts)

    @property
    def files(self) -> list[Path]:
        """The table first, then the figure (if drawn) and the data."""
        stem = self.info.stem
        return [p for p in (self.file(f"{stem}.{ext}") for ext in ("md", "png", "json")) if p.exists()]

    @property
    def data(self) -> dict:
        return json.loads(self.file(f"{self.info.stem}.json").read_text())

    @property
    def headline(self) -> dict[str, Any]:
        """The study's own facts (checks passed, cells, …), as the parent run's metrics."""
        return {k: v for k, v in self.info.model_dump().items() if k != "stem"}
