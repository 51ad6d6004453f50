"""Typed configs of the jobs that run many experiment configs: the two studies of
docs/research.md (with the paper's setup as defaults), the methods study, and sweeps.

The §1 studies fit scikit-learn-style logistic regressions: full-batch L-BFGS run to
convergence, with no checkpoint selection at all, so no number is chosen on any labels.
"""

from __future__ import annotations

import itertools
import json

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from flows.config import JobConfig
from models.methods import METHODS, TEACHERS
from tasks.specs import BanditConfig, Detector, GroupCounts, ModelConfig, Policy, Section, SyntheticTask


def converged(C: float) -> ModelConfig:
    """Logistic regression of inverse strength ``C``, fitted to convergence in one epoch."""
    return ModelConfig(C=C, epochs=1, lbfgs_iters=300)


class GridSplits(Section):
    """Each cell draws these splits fresh, its group counts scaled by these factors."""

    weak_train: float = Field(1.0, gt=0)
    w2s_train: float = Field(1.0, gt=0)
    test: float = Field(1.0, gt=0)


class OverlapStudyConfig(JobConfig):
    """The overlap-density sweep: ``n_easy = n_hard`` fixed, ``n_overlap`` on a grid, many seeds.

    Each (grid point, seed) cell trains a weak model, a ceiling, and W2S students on the
    weak labels of (a) the true overlap points, (b) the points each detector calls overlap,
    (c) every point. ``detection_check`` is one more cell per seed, the paper's 500/500/500
    mixture, on which detectors are graded.
    """

    experiment: str = Field("w2s-overlap-study", min_length=1)
    seeds: int = Field(20, ge=2, description="seeds 0 .. seeds-1")
    task: SyntheticTask = SyntheticTask()
    n_easy: int = Field(100, ge=1)
    n_hard: int = Field(100, ge=1)
    overlap_counts: tuple[int, ...] = tuple(5 * k for k in range(1, 20))
    detection_check: GroupCounts = GroupCounts(easy=500, hard=500, overlap=500)
    splits: GridSplits = GridSplits()
    weak: ModelConfig = converged(1.0)
    ceiling: ModelConfig = converged(1.0)
    strong: ModelConfig = converged(0.01)
    weak_labels: Literal["hard", "soft"] = Field("hard", description="hard: the weak model's argmax, as in the paper")
    detectors: tuple[Detector, ...] = ("paper", "mixture_energy")

    @model_validator(mode="after")
    def _grid(self):
        if not self.overlap_counts or min(self.overlap_counts) < 1:
            raise ValueError("overlap_counts: give at least one count, each >= 1")
        return self

    def cells(self) -> list[GroupCounts]:
        """The grid points, then the detection check."""
        grid = [GroupCounts(easy=self.n_easy, hard=self.n_hard, overlap=k) for k in self.overlap_counts]
        return grid + [self.detection_check]


class SelectionStudyConfig(JobConfig, BanditConfig):
    """Source selection over ``rounds`` pulls, every policy on the same sources and seeds.

    Source ``k`` is the mixture with overlap density ``densities[k]`` (easy and hard share
    the rest equally). After each round every policy's W2S student is retrained on what
    it collected and scored on a test set drawn from all sources alike.
    """

    experiment: str = Field("w2s-selection-study", min_length=1)
    seeds: int = Field(20, ge=2, description="seeds 0 .. seeds-1")
    task: SyntheticTask = SyntheticTask()
    densities: tuple[float, ...] = (0.05, 0.2, 0.5)
    pool_size: int = Field(2500, ge=1, description="points in each source's pool")
    weak_train_size: int = Field(200, ge=2, description="ground-truth points per source for the weak model")
    test_size: int = Field(500, ge=1, description="test points per source")
    rounds: int = Field(50, ge=1)
    pull_size: int = Field(50, ge=1, description="points per pull, as the experiment's selection.pull_size")
    policies: tuple[Policy, ...] = ("ucb1", "paper_ucb", "thompson", "epsilon_greedy", "random", "oracle")
    detector: Detector = "mixture_energy"
    student: Literal["all", "overlap_only"] = Field("all", description="train on all collected points, or the detected overlap")
    weak: ModelConfig = converged(1.0)
    strong: ModelConfig = converged(0.01)
    weak_labels: Literal["hard", "soft"] = "hard"

    @model_validator(mode="after")
    def _fits(self):
        if len(self.densities) < 2 or not all(0 <= d <= 1 for d in self.densities):
            raise ValueError("densities: give at least two sources, each density in [0, 1]")
        if self.rounds * self.pull_size > self.pool_size:
            raise ValueError(
                f"selection: budget rounds*pull_size={self.rounds * self.pull_size} exceeds pool_size={self.pool_size}"
            )
        if not self.policies:
            raise ValueError("policies: give at least one policy")
        return self

    def source_counts(self, n: int) -> list[dict[str, int]]:
        """Group counts of ``n`` points of each source."""
        out = []
        for d in self.densities:
            overlap = int(round(d * n))
            easy = (n - overlap) // 2
            out.append({"easy": easy, "hard": n - overlap - easy, "overlap": overlap})
        return out


def _adam(C: float, hidden: int | None = None) -> dict:
    """A gradient-step student recipe for the methods study: full-batch Adam, at most 30
    steps, early-stopped; losses with a schedule see every step (L-BFGS takes few)."""
    arch = {"arch": "mlp", "hidden": hidden} if hidden else {}
    return {**arch, "optimizer": "adam", "lr": 0.01, "epochs": 30, "patience": 5, "C": C}


DEFAULT_SETTINGS = {
    # Shin et al.'s binary mixture, three sources bought by UCB (the experiment's defaults)
    # with an Adam student; csl's specialists are one per source.
    "mixture": {"strong": _adam(0.01), "for_method": {"csl": {"by": "sources", "teachers": [1, 3]}}},
    # The same with the experiment's default student: full-batch L-BFGS, early-stopped.
    "mixture_lbfgs": {"for_method": {"csl": {"by": "sources", "teachers": [1, 3]}}},
    # Eight classes in a tree of blocks; the weak model is a 3-unit MLP, too small for eight
    # classes at once but not for a block of two or four: csl's condition.
    "class_blocks": {
        "data": {"sources": [{"name": "blocks", "kind": "class_blocks", "size": 1000}]},
        "selection": {"policy": "all"},
        "weak": {"arch": "mlp", "hidden": 3, "optimizer": "adam", "lr": 0.01, "epochs": 200, "patience": 20, "C": 1.0},
        "ceiling": _adam(1.0, hidden=64),
        "strong": _adam(1.0, hidden=64),
    },
}

DEFAULT_VARIANTS = {
    "xent": {"method": "xent"},
    "xent_hard": {"method": "xent_hard"},
    "aux_conf": {"method": "aux_conf"},
    "adapt_conf": {"method": "adapt_conf"},
    "product": {"method": "product"},
    "probe_filter": {"method": "probe_filter"},
    "csl_2": {"method": {"name": "csl", "teachers": [1, 2]}},
    "csl": {"method": "csl"},
    "overlap_only": {"method": "overlap_only"},
    "bootstrap": {"method": "bootstrap"},
}


class MethodsStudyConfig(JobConfig):
    """Every method variant × every data setting × ``seeds`` seeds, as experiment configs.

    A cell's config is the experiment's defaults, updated by its variant, then by its
    setting; a setting's ``source: NAME`` applies that bundled source's preset before the
    variant, and its ``for_method: {METHOD: {PARAM: VALUE}}`` sets a method's parameters in
    the cells of that method only (a setting adapts a method to its data, e.g. csl by
    sources; a variant's own parameters come after and win); ``skip`` lists the variants a
    setting leaves out. Cells of one (setting, seed) share every
    stage upstream of the student through the cache.
    """

    FREE_FORM: ClassVar[tuple[str, ...]] = ("settings", "variants", "skip")

    experiment: str = Field("w2s-methods-study", min_length=1)
    seeds: int = Field(10, ge=2, description="seeds 0 .. seeds-1")
    settings: dict[str, dict] = DEFAULT_SETTINGS
    variants: dict[str, dict] = DEFAULT_VARIANTS
    skip: dict[str, tuple[str, ...]] = {"mixture": ("csl_2",), "mixture_lbfgs": ("csl_2",)}
    baseline: str = Field("xent", description="the variant every other is compared with, seed by seed")
    select_on: Literal["weak_val", "oracle_val"] = "weak_val"

    @model_validator(mode="after")
    def _cells_are_valid(self):
        if not self.settings or not self.variants:
            raise ValueError("settings and variants: give at least one of each")
        if self.baseline not in self.variants:
            raise ValueError(f"baseline: '{self.baseline}' is not one of the variants {sorted(self.variants)}")
        for setting, names in self.skip.items():
            unknown = set(names) - set(self.variants) or ({setting} - set(self.settings))
            if unknown:
                raise ValueError(f"skip.{setting}: unknown setting or variant {sorted(unknown)}")
        for setting, updates in self.settings.items():
            for_method = updates.get("for_method", {})
            if not isinstance(for_method, dict) or not all(isinstance(p, dict) for p in for_method.values()):
                raise ValueError(f"settings.{setting}.for_method: give a mapping of method names to their "
                                 "parameters, e.g. {csl: {by: sources}}")
            unknown = set(for_method) - set(METHODS)
            if unknown:
                raise ValueError(f"settings.{setting}.for_method: unknown method {sorted(unknown)} (methods: {', '.join(METHODS)})")
        for setting, variant in self.pairs():
            try:
                self.cell(setting, variant, 0)
            except ValueError as e:
                raise ValueError(f"setting '{setting}', variant '{variant}': {e}") from None
        return self

    def pairs(self) -> list[tuple[str, str]]:
        return [(s, v) for s in self.settings for v in self.variants if v not in self.skip.get(s, ())]

    def cell(self, setting: str, variant: str, seed: int):
        from flows.config import ExperimentConfig, build_config, preset_first

        fixed = {"experiment": self.experiment, "seed": seed, "strong": {"select_on": self.select_on}}
        # A setting may start from a bundled source's preset ({source: NAME, ...}): the preset
        # comes first, so that a variant can change what it sets (e.g. the selection policy).
        updates = dict(self.settings[setting])
        for_method = updates.pop("for_method", {})
        *bundled, updates = preset_first(updates)
        chosen = _method_name([*bundled, self.variants[variant]])
        variant_method = self.variants[variant].get("method")
        own = {k: v for k, v in variant_method.items() if k != "name"} if isinstance(variant_method, dict) else {}
        adapted = {"method": {"name": chosen, **for_method.get(chosen, {}), **own}}
        return build_config([*bundled, self.variants[variant], updates, adapted, fixed], schema=ExperimentConfig)


def _method_name(layers: list[dict]) -> str:
    """The method the last of ``layers`` to name one chooses (``method: NAME`` or
    ``method: {name: NAME, ...}``), else the default: read off the raw layers, because the
    parameters a setting gives that method may be valid only on that setting's data."""
    from flows.config import ExperimentConfig

    name = ExperimentConfig.model_fields["method"].default.name
    for layer in layers:
        method = layer.get("method")
        if isinstance(method, str):
            name = method
        elif isinstance(method, dict) and "name" in method:
            name = method["name"]
    return name


class SweepConfig(JobConfig):
    """The product of ``grid``'s values over one experiment config: every combination is a
    cell, run through the experiment's DAG as a nested MLflow run tagged with the sweep's
    ``name`` and its own values.

    A cell's config is the experiment's defaults, updated by ``base`` (a ``source: NAME``
    in it applies that bundled preset first), then by a ``source`` axis's preset, then by
    ``overrides`` (``key=value``), then by its other grid values (dotted keys, as on the
    command line). Cells that agree on what a
    stage reads share that stage through the cache: four methods × three seeds train the
    weak model three times.
    """

    FREE_FORM: ClassVar[tuple[str, ...]] = ("base", "grid")

    experiment: str = Field("w2s-sweep", min_length=1)
    name: str = Field("sweep", pattern=r"^[\w.-]+$", description="tags every cell: w2s.sweep=NAME")
    base: dict = {}
    overrides: tuple[str, ...] = ()
    grid: dict[str, list] = {"method": ["xent", "xent_hard", "aux_conf", "adapt_conf"], "seed": [0, 1, 2]}
    runner: Literal["threads", "dask"] = Field("threads", description="Prefect task runner for the cells")
    workers: int = Field(2, ge=1, description="cells at once (threads) or Dask workers of a local cluster")
    dask_address: str | None = Field(None, description="a running Dask scheduler; default: start a local cluster")

    @model_validator(mode="after")
    def _cells_are_valid(self):
        if not self.grid:
            raise ValueError("grid: give at least one key with a list of values")
        for key, values in self.grid.items():
            if not isinstance(values, list) or not values:
                raise ValueError(f"grid.{key}: give a non-empty list of values")
        if self.dask_address and self.runner != "dask":
            raise ValueError("dask_address: only used with runner=dask")
        for axes in self.combinations():
            try:
                self.cell(axes)
            except ValueError as e:
                raise ValueError(f"cell {cell_label(axes)}: {e}") from None
        return self

    def combinations(self) -> list[dict]:
        keys = list(self.grid)
        return [dict(zip(keys, values)) for values in itertools.product(*self.grid.values())]

    def cell(self, axes: dict):
        from flows.config import ExperimentConfig, build_config, preset_first

        values = [f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in axes.items()]
        # A source=NAME axis applies that source's preset: before the fixed overrides, so that
        # they refine every cell's source (source.path=DIR/{name}: each task's local copy).
        presets = [v for k, v in zip(axes, values) if k == "source"]
        rest = [v for k, v in zip(axes, values) if k != "source"]
        return build_config(
            [*preset_first(self.base), {"experiment": self.experiment}], [*presets, *self.overrides, *rest],
            schema=ExperimentConfig,
        )


def cell_label(axes: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in axes.items())


class LadderConfig(JobConfig):
    """A ladder of pretrained models of one family, from small to large (docs/backbones.md).

    Each model is trained once on ground truth of ``weak_train`` (the strong recipe: the
    ``ceiling`` section's head on its frozen features, or the model fine-tuned): it is the
    ceiling of its own size and the teacher of every larger one. Then every (weak < strong)
    pair's W2S student is trained on the weak model's labels. N models cost N ground-truth
    fits and N(N-1)/2 students. A pair's config is the experiment's defaults updated by
    ``base`` (a ``source: NAME`` in it applies that preset first) and ``overrides``; the
    models replace its sides' backbones, each with ``mode`` (and its own ``finetune_lrs``
    entry, if given) and every other backbone setting from ``strong.backbone``. Without a
    source named, the ladder reads the bundled course titles (``source=ucla_courses``).
    """

    FREE_FORM: ClassVar[tuple[str, ...]] = ("base",)

    experiment: str = Field("w2s-ladder", min_length=1)
    # By default the pretrained family this machine has offline: MiniLM cut to 1, 2 and all 6 layers.
    models: tuple[str, ...] = Field(("minilm:1", "minilm:2", "minilm"), min_length=2,
                                    description="backbone names from small to large (NAME, NAME:k, folders)")
    mode: Literal["probe", "finetune", "lora"] = "probe"
    finetune_lrs: tuple[float, ...] = Field((), description="one fine-tuning learning rate per model (default: strong.backbone's)")
    seeds: int = Field(1, ge=1, description="seeds 0 .. seeds-1")
    base: dict = {}
    overrides: tuple[str, ...] = ()

    DEFAULT_SOURCE: ClassVar[str] = "ucla_courses"  # a ladder that names no source: the bundled course titles

    @model_validator(mode="after")
    def _ladder_is_valid(self):
        if len(set(self.models)) != len(self.models):
            raise ValueError(f"models: each model once, got {list(self.models)}")
        if self.finetune_lrs and len(self.finetune_lrs) != len(self.models):
            raise ValueError(f"finetune_lrs: one per model ({len(self.models)}), got {len(self.finetune_lrs)}")
        config = self.experiment_config(0)  # the pairs' config is valid, and says what the ladder can do
        if config.data.kind != "dataset":
            raise ValueError("models: a ladder of pretrained models reads text or images; name a real source (source=NAME)")
        method = METHODS[config.method.name]
        if TEACHERS in method.needs:
            raise ValueError(f"method: {method.name} trains specialised weak teachers; a ladder's teachers are its models")
        if self.mode != "probe" and method.features_only:
            can = ", ".join(m.name for m in METHODS.values() if not m.features_only)
            raise ValueError(f"method: {method.name} cannot fine-tune a backbone ({method.features_only}); "
                             f"with mode={self.mode} use one of {can}")
        return self

    def experiment_config(self, seed: int):
        """The config every pair of ``seed`` shares (its sides' backbones are the ladder's models)."""
        from flows.config import ExperimentConfig, build_config, preset_first

        named = "source" in self.base or "data" in self.base or any(
            o.startswith(("source", "data.sources")) for o in self.overrides
        )
        base = self.base if named else {"source": self.DEFAULT_SOURCE, **self.base}
        # The strong side's backbone settings are every model's; its name is the ladder's to set.
        fixed = {"experiment": self.experiment, "seed": seed, "strong": {"backbone": {"name": self.models[-1]}}}
        return build_config([*preset_first(base), fixed], self.overrides, schema=ExperimentConfig)

    def backbones(self, config) -> list:
        """Each model's backbone settings: ``config``'s strong side's, with the model's name,
        the ladder's mode and its own learning rate."""
        from tasks.specs import BackboneConfig

        settings = config.strong.backbone.model_dump() if config.strong.backbone else {}
        lrs = self.finetune_lrs or [settings.get("finetune_lr", BackboneConfig.model_fields["finetune_lr"].default)] * len(self.models)
        return [BackboneConfig(**{**settings, "name": m, "mode": self.mode, "finetune_lr": lr}) for m, lr in zip(self.models, lrs)]

    def pairs(self) -> list[tuple[int, int]]:
        """(weak, strong) model indices: every smaller model teaches every larger one."""
        return list(itertools.combinations(range(len(self.models)), 2))
