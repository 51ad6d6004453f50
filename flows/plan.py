"""``w2s plan``: which stages a run would recompute, and why, without running anything.

The planner walks the experiment's wiring with a stand-in for the StageRunner. For each
stage it computes the cache key the run would use and looks for its record. A stage with
an intact record is a hit and hands its stored manifest downstream; any other stage would
run, and hands on a placeholder, so that what consumes it is known to follow. The reason
for a miss is read off the stage's nearest earlier record (the one it differs from
least): its config values, the hashes of the code files it runs, or the content of its
inputs. A stage downstream of a recomputed one reruns only if that one's output changes
(a deterministic stage after a comment edit gives the same bytes), which is as far as a
plan can know.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flows.config import ExperimentConfig
from flows.experiment import experiment_stages
from flows.runner import Forcing
from tasks.code_fingerprint import code_hashes
from tasks.manifest import Manifest, canonical
from tasks.stage import cache_record, manifests_in, read_stage_record
from tasks.workspace import artifacts_root
from tasks.tracking import as_params

PENDING = "pending:"


@dataclass
class Planner:
    """Stands in for a StageRunner: the same call and the same forcing rules, but nothing runs."""

    forcing: Forcing = field(default_factory=Forcing)
    steps: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, stage, *args, label: str | None = None, **kwargs) -> Manifest:
        name = label or stage.name
        key = stage.fn.cache_key(*args, **kwargs)
        inputs = manifests_in((args, kwargs))
        reasons = self.forcing.reasons(stage.name, name, key, inputs)
        if not cache_record(key).is_file():
            params = canonical(stage.fn.bound_parameters(args, kwargs))
            after = sorted({m.stage for m in inputs if m.fingerprint.startswith(PENDING)})
            differences = _why_new(stage.name, stage.fn.stage_module, params)
            reasons += [("after", s) for s in after] + differences
            if not reasons:
                reasons.append(("missing", "the cache record was deleted"))
        # Only "after X" means: it reruns if X's new output differs from the old one.
        would = "cached" if not reasons else "maybe" if all(k == "after" for k, _ in reasons) else "run"
        self.steps.append({"stage": name, "would": would, "reasons": [{"kind": k, "detail": d} for k, d in reasons]})
        if reasons:
            return stage.fn.produces(stage=stage.name, key=key, path="", fingerprint=PENDING + key)
        return _recorded_manifest(key)


def plan_experiment(config: ExperimentConfig, refresh=(), rerun_from=()) -> list[dict]:
    planner = Planner(Forcing(frozenset(refresh), frozenset(rerun_from)))
    experiment_stages(planner, config)
    return planner.steps


@dataclass
class StageList:
    """Stands in for a StageRunner to list the stages a config's DAG has, in the order they
    run (under their labels: ``teachers_2``, …), touching no cache and running nothing."""

    names: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)  # each call's name, as the runner records it

    def __call__(self, stage, *args, label: str | None = None, **kwargs) -> Manifest:
        for name in (stage.name, label):  # a stage is named by either
            if name and name not in self.names:
                self.names.append(name)
        step = label or stage.name
        if step not in self.steps:
            self.steps.append(step)
        return stage.fn.produces(stage=stage.name, key=step, path="", fingerprint=PENDING + step)


def stage_names(config: ExperimentConfig) -> list[str]:
    """What ``--refresh`` and ``--from`` accept for ``config``: read off the wiring itself."""
    listed = StageList()
    experiment_stages(listed, config)
    return listed.names


def coming_stages(config: ExperimentConfig) -> list[str]:
    """The stages a run of ``config`` will call, in order, for a display to show as waiting;
    none where listing them would read data (a local or hub dataset's fingerprint)."""
    data = config.data
    if data.kind == "dataset" and not all(s.bundled for s in data.sources):
        return []
    listed = StageList()
    experiment_stages(listed, config)
    return listed.steps


def _why_new(stage: str, module: str, params: dict) -> list[tuple[str, str]]:
    """Compare a missing key's parts with the stage's nearest earlier record."""
    previous = [r for r in (read_stage_record(d) for d in (artifacts_root() / stage).glob("*")) if r]
    if not previous:
        return [("new", "never run in this workspace")]
    now = {"code": code_hashes(module), "params": as_params(params)}

    def differences(record: dict) -> list[tuple[str, str]]:
        out = []
        before = as_params(record["params"])
        for k in sorted(set(now["params"]) | set(before)):
            old, new = before.get(k), now["params"].get(k)
            if old == new:
                continue
            if k.endswith(".fingerprint"):
                if not str(new).startswith(PENDING):  # a pending input is already named
                    out.append(("input", f"{now['params'].get(k.removesuffix('fingerprint') + 'manifest')} output changed"))
            else:
                out.append(("config", f"{k}: {old} → {new}"))
        code_before = record["code"]
        for m in sorted(set(now["code"]) | set(code_before)):
            if now["code"].get(m) != code_before.get(m):
                out.append(("code", m.replace(".", "/") + ".py"))
        return out

    return min((differences(r) for r in previous), key=len)


def _recorded_manifest(key: str) -> Manifest:
    from prefect.results import ResultRecord

    return ResultRecord.deserialize(cache_record(key).read_bytes()).result


def format_plan(steps: list[dict]) -> str:
    width = max(len(s["stage"]) for s in steps)
    lines = [f"{'stage':<{width}}  would   why", f"{'-' * width}  ------  ---"]
    for s in steps:
        why = "; ".join(f"{r['kind']}: {r['detail']}" for r in s["reasons"])
        lines.append(f"{s['stage']:<{width}}  {s['would']:<6}  {why}")
    counts = {w: sum(s["would"] == w for s in steps) for w in ("run", "maybe", "cached")}
    lines.append(
        f"\n{counts['run']} would run, {counts['maybe']} would run if an upstream output changes, {counts['cached']} cached."
    )
    return "\n".join(lines)
