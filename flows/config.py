"""The typed experiment configuration: the single source of truth for every run.

A config comes from the embedded defaults, an optional YAML file and ``key=value``
overrides, in that order. Unknown keys and bad values are refused with a message that
names the key. Its sections are the stages' own types (tasks/specs.py); each stage is
handed only the slice it reads, so its cache key changes when, and only when, that
slice does.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, model_validator

from models.nlp_tasks import TASKS
from models.synthetic import scale_counts
from tasks.specs import (
    DEFAULT_TEXT_BACKBONE,
    BackboneConfig,
    ClassBlocksSource,
    DataConfig,
    METHODS,
    DatasetSource,
    MethodChoice,
    ModelConfig,
    OverlapConfig,
    Section,
    SelectionConfig,
    SourceConfig,
    StrongConfig,
    unknown_parameter,
)


class JobConfig(Section):
    """What every job's config has: an MLflow experiment, a content hash, a YAML form."""

    experiment: str = Field("w2s", min_length=1, description="MLflow experiment name")

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:16]

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


class ExperimentConfig(JobConfig):
    seed: int = Field(0, ge=0)
    data: DataConfig = DataConfig()
    weak: ModelConfig = ModelConfig()
    ceiling: ModelConfig = Field(ModelConfig(), description="the strong model on ground truth: strong.backbone's, by default")
    strong: StrongConfig = StrongConfig()
    method: MethodChoice = Field(METHODS["xent"].Params(), description="a method of models/methods/ and its parameters")
    overlap: OverlapConfig = OverlapConfig()
    selection: SelectionConfig = SelectionConfig()

    @property
    def method_params(self):
        """The chosen method's parameters, ``auto`` values settled for this data: what its
        stage (and its cache key) sees."""
        return self.method.settled(self.data.n_classes, len(self.data.sources))

    @model_validator(mode="after")
    def _text_has_a_backbone(self):
        """The strong side reads text through the bundled MiniLM unless another backbone is
        named. Settled here, once, so that the recorded config and every stage name the
        encoder that ran."""
        text = any(getattr(s, "text_column", None) or getattr(s, "benchmark", None) for s in self.data.sources)
        if self.strong.backbone is None and text:
            default = self.strong.model_copy(update={"backbone": BackboneConfig(name=DEFAULT_TEXT_BACKBONE)})
            object.__setattr__(self, "strong", default)
        return self

    @model_validator(mode="after")
    def _backbones_fit(self):
        """A backbone reads text or images; the ceiling is the strong model itself, trained on
        ground truth, so it has the student's backbone (the papers' ceiling)."""
        for side in ("weak", "strong"):
            if getattr(self, side).backbone is not None and self.data.kind != "dataset":
                raise ValueError(f"{side}.backbone: a backbone reads text or images; the {self.data.kind} sources are vectors")
        if self.ceiling.backbone is not None and self.ceiling.backbone != self.strong.backbone:
            raise ValueError(
                "ceiling.backbone: the ceiling is the strong model trained on ground truth and uses strong.backbone; "
                "set strong.backbone (or leave ceiling.backbone unset)"
            )
        return self

    @model_validator(mode="after")
    def _finetune_fits(self):
        reason = METHODS[self.method.name].features_only
        if self.strong.finetuned is not None and reason:
            able = ", ".join(name for name, m in METHODS.items() if not m.features_only)
            raise ValueError(
                f"method: '{self.method.name}' cannot fine-tune a backbone ({reason}); with strong.backbone.mode="
                f"{self.strong.backbone.mode} use one of {able}"
            )
        return self

    @model_validator(mode="after")
    def _method_fits_the_data(self):
        self.method_params  # settling auto values checks them against the data (csl's levels)
        return self

    @model_validator(mode="after")
    def _budget_fits(self):
        """A generated source's pool size is known now; a real one's once it is split, and the
        flow checks it then (tasks.select_sources.check_budget), by the same rule."""
        if self.data.kind == "dataset":
            return self
        for s in self.data.sources:
            problem = self.selection.budget_problem(s.name, _pool_size(s, self.data.splits.w2s_train))
            if problem:
                raise ValueError(problem)
        return self


def _pool_size(source: SourceConfig | ClassBlocksSource, factor: float) -> int:
    if isinstance(source, ClassBlocksSource):
        return int(round(source.size * factor))
    return sum(scale_counts(source.counts.model_dump(), factor).values())


class ConfigError(ValueError):
    """A user-facing configuration error; its message names the offending key."""


def load_config(
    path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (), schema: type[JobConfig] = ExperimentConfig
) -> Any:
    """``schema``'s defaults, updated by the YAML file at ``path``, then by ``key=value`` overrides."""
    updates = [read_yaml_mapping(path)] if path is not None else []
    return build_config(updates, overrides, schema)


def read_yaml_mapping(path: str | Path) -> dict:
    """A YAML file's top-level mapping (empty file: empty mapping), or one ConfigError line."""
    path = Path(path)
    try:
        loaded = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"config file {path} cannot be read: {str(e).splitlines()[0]}") from None
    if loaded is not None and not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys, not {type(loaded).__name__}")
    return loaded or {}


def preset_first(updates: dict) -> list[dict]:
    """``updates`` as a list of config updates, a ``source: NAME`` in it turned into that
    bundled preset and put first, so that what follows can change what the preset sets."""
    updates = dict(updates)
    return [preset(updates.pop("source")), updates] if "source" in updates else [updates]


def build_config(
    updates: list[dict], overrides: list[str] | tuple[str, ...] = (), schema: type[JobConfig] = ExperimentConfig
) -> Any:
    """``schema``'s defaults, updated by each nested mapping of ``updates`` in turn, then by
    ``key=value`` overrides; validated."""
    data: dict[str, Any] = schema().model_dump(mode="json")
    free_form = getattr(schema, "FREE_FORM", ())
    for update in updates:
        # A free-form mapping (a study's named settings) is replaced, not merged key by key.
        data = _merge(data, {k: v for k, v in update.items() if k not in free_form}, "")
        data.update({k: v for k, v in update.items() if k in free_form})
    for item in _method_first(overrides):
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        value = yaml.safe_load(raw) if raw else ""
        if "data" in data and (key == "source" or key.startswith("source.")):
            data, key = _source_shorthand(data, key, raw)
            if key is None:
                continue
        _set(data, key, value)
        if key == "method":
            data["method"] = _method_defaults(value)
    try:
        return schema.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_first_error(e, data)) from None


def _method_first(overrides) -> list[str]:
    """``method=NAME`` selects a method at its defaults: it applies before every other
    override, so that ``method.P=V`` sets P of that method wherever it stands (a sweep's
    fixed ``method.P=V`` with its ``method=…`` axis too)."""
    return sorted(overrides, key=lambda item: item.partition("=")[0] != "method")


def _method_defaults(value: Any) -> Any:
    """A method named (``aux_conf`` or ``{name: aux_conf, …}``) with every parameter it leaves
    out at that method's default, so that any of them can then be set by name
    (``method.intermediate.hidden=16``). An unknown name is left to validation."""
    name = value if isinstance(value, str) else value.get("name") if isinstance(value, dict) else None
    if name not in METHODS:
        return value
    given = value if isinstance(value, dict) else {}
    return {**METHODS[name].Params().model_dump(mode="json"), **given}


def _config_path(loc: tuple, data: Any) -> list:
    """An error's location as the config's keys: without the tags pydantic inserts for a
    discriminated union's member (``data.sources.0.dataset.colour`` is ``data.sources.0.colour``)."""
    path, node = [], data
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str) and part not in node and part != loc[-1]:
            continue
        if isinstance(part, str) and node is not None and not isinstance(node, (dict, list)):
            continue  # a union member's tag after the value itself (method.teachers's literal['auto'])
        path.append(part)
        node = node[part] if isinstance(node, (dict, list)) and _has(node, part) else None
    return path


def _has(node: dict | list, part: Any) -> bool:
    return part in node if isinstance(node, dict) else isinstance(part, int) and part < len(node)


PRESETS = Path(__file__).parent / "presets"


def bundled_sources() -> list[str]:
    """The bundled real datasets ``source=NAME`` accepts: one preset file each."""
    return sorted(p.stem for p in PRESETS.glob("*.yaml") if not p.stem.startswith("_"))


def preset(name: str) -> dict:
    """The config updates of source ``name``: a bundled set's preset file, or a benchmark
    task's source on the shared benchmark preset."""
    if name in TASKS:
        return benchmark_preset(name)
    if name not in bundled_sources():
        raise ConfigError(
            f"source: unknown source '{name}' (bundled: {', '.join(bundled_sources())}; benchmark tasks: {', '.join(TASKS)})"
        )
    return read_yaml_mapping(PRESETS / f"{name}.yaml")


def benchmark_preset(name: str) -> dict:
    """A benchmark task with its paper's defaults (balancing, how many train and test rows),
    on ``_benchmark.yaml``'s models and splits."""
    protocol = TASKS[name].protocol
    source = {
        "name": name, "kind": "dataset", "benchmark": name, "balance": protocol.balance,
        "max_rows": protocol.train_rows, "max_test_rows": protocol.test_rows,
    }
    updates = read_yaml_mapping(PRESETS / "_benchmark.yaml")
    return {**updates, "data": {**updates.get("data", {}), "sources": [source]}}


def _source_shorthand(data: dict, key: str, raw: str) -> tuple[dict, str | None]:
    """``source=NAME`` applies a bundled source's preset; ``source.K=V`` sets K of the run's one
    real source, starting it from the single-dataset preset if the run has none yet."""
    if key == "source":
        return _merge(data, preset(raw), ""), None
    sources = data["data"]["sources"]
    if len(sources) > 1 and all(s.get("kind") == "dataset" for s in sources):
        raise ConfigError(
            f"{key}: the run has {len(sources)} real sources; set one with data.sources.N.{key.removeprefix('source.')}"
        )
    if not (len(sources) == 1 and sources[0].get("kind") == "dataset"):
        data = _merge(data, read_yaml_mapping(PRESETS / "_dataset.yaml"), "")
        sources = [{"kind": "dataset"}]
    # Every field present, so that any of them can be set by name.
    defaults = {k: f.get_default() for k, f in DatasetSource.model_fields.items()}
    data["data"]["sources"] = [{**defaults, **sources[0]}]
    return data, "data.sources.0." + key.removeprefix("source.")


# Keys a config no longer has, and what to write instead.
MOVED = {
    "methods": "a method and its parameters are one section now: method=NAME method.PARAM=VALUE "
    "(in YAML, method: {name: NAME, PARAM: VALUE})",
    "backbone": "each side names its model now: strong.backbone=NAME for the student and its ceiling, "
    "weak.backbone=NAME for the weak model (backbone.mode=finetune is strong.backbone.mode=finetune, "
    "backbone.lora=true is strong.backbone.mode=lora, backbone.K is strong.backbone.K)",
}


def _unknown(key: str, value: Any = None) -> ConfigError:
    parts = key.split(".")
    while isinstance(value, dict) and value and parts[0] in MOVED:  # name the key a YAML file nests
        k, value = next(iter(value.items()))
        parts.append(str(k))
    key, top = ".".join(parts), parts[0]
    if top == "methods" and len(parts) >= 2:
        name, param = parts[1], ".".join(parts[2:])
        cli = f"method={name}" + (f" method.{param}=VALUE" if param else "")
        yaml_form = f"{{name: {name}, {param}: VALUE}}" if param else name
        return ConfigError(f"{key}: a method and its parameters are one section now: write {cli} (in YAML, method: {yaml_form})")
    return ConfigError(f"{key}: {MOVED[top]}" if top in MOVED else f"unknown config key '{key}'")


def _merge(base: dict, update: dict, prefix: str) -> dict:
    out = dict(base)
    for k, v in update.items():
        key = f"{prefix}{k}"
        if k not in base:
            raise _unknown(key, v)
        if key == "method":
            out[k] = _merge_method(base[k], v)
        else:
            out[k] = _merge(base[k], v, f"{key}.") if isinstance(base[k], dict) and isinstance(v, dict) else v
    return out


def _merge_method(base: Any, update: Any) -> Any:
    """``method`` in a YAML update: a name, or a mapping naming another method, selects that
    method (its parameters at their defaults but for those given); a mapping without a name
    or with the same one sets parameters of the method already chosen. Parameters the
    method lacks are left to validation, which names the ones it has."""
    if isinstance(update, dict) and isinstance(base, dict) and update.get("name", base.get("name")) == base.get("name"):
        return {**base, **update}
    return _method_defaults(update)


def _set(data: dict, dotted: str, value: Any) -> None:
    node: Any = data
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        where = ".".join(parts[: i + 1])
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"unknown config key '{where}' (list index out of range)")
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
        elif isinstance(node, dict) and (part in node or (last and i > 0)):
            # A key a section may lack (its defaults not written out, as in strong.backbone's
            # {name: …}) is set, and validation refuses it if the section has no such field.
            if last:
                node[part] = value
            else:
                if node[part] is None:  # an optional section not set yet (strong.backbone.mode=…)
                    node[part] = {}
                elif isinstance(node[part], str):  # a section given by its name (strong.backbone=minilm)
                    node[part] = {"name": node[part]}
                node = node[part]
        else:
            raise _unknown(dotted if parts[0] in MOVED else where)


def _first_error(e: ValidationError, data: Any = None) -> str:
    err = e.errors()[0]
    key = ".".join(str(p) for p in _config_path(err["loc"], data))
    if err["type"] == "extra_forbidden":
        path = key.split(".")
        method = data.get("method") if isinstance(data, dict) else None
        if len(path) == 2 and path[0] == "method" and isinstance(method, dict) and method.get("name") in METHODS:
            return unknown_parameter(method["name"], path[1])
        return str(_unknown(key))
    # A value no member of a union accepts fails once per member: say what each wanted.
    wanted = [x["msg"].removeprefix("Value error, ") for x in e.errors()
              if ".".join(str(p) for p in _config_path(x["loc"], data)) == key]
    first, *others = dict.fromkeys(wanted)
    msg = " or ".join([first, *(o.removeprefix("Input should be ") for o in others)])
    given = err.get("input")
    shown = "" if isinstance(given, (dict, list)) or given is None else f" (got {given!r})"
    # Whole-config checks name their keys in the message itself.
    return f"{key}: {msg}{shown}" if key else msg
