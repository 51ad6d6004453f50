"""``w2s``: a thin command line over the flows.

    w2s run [CONFIG.yaml] [key=value ...] [--refresh STAGE ...] [--json]
    w2s study overlap|selection|methods [CONFIG.yaml] [key=value ...] [--out DIR] [--json]
    w2s ui [--port 5000]

Heavy modules (Prefect, MLflow, torch) are imported only once the arguments are known
to be good, so a mistyped key is answered at once.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

EXIT_USAGE = 2


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except UserError as e:
        print(f"w2s: error: {e}", file=sys.stderr)
        return EXIT_USAGE


class UserError(Exception):
    """A mistake the user can fix; reported as one line, exit status 2."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="w2s", description="Weak-to-strong experiments as a cached Prefect DAG.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run one experiment (defaults: the built-in synthetic sources)")
    run.add_argument("items", nargs="*", metavar="[CONFIG.yaml] key=value", help="a YAML config and/or overrides")
    run.add_argument("--refresh", action="append", default=[], metavar="STAGE", help="recompute STAGE and what depends on it")
    run.add_argument("--json", action="store_true", help="print the result as one JSON object on stdout")
    run.add_argument("-v", "--verbose", action="store_true", help="show Prefect's own logs")
    run.set_defaults(handler=_run)

    study = sub.add_parser("study", help="run a study: overlap density, source selection (RESEARCH.md §1), methods (§2–§4)")
    study.add_argument("name", choices=sorted(STUDIES), help="which study")
    study.add_argument("items", nargs="*", metavar="[CONFIG.yaml] key=value", help="a YAML config and/or overrides")
    study.add_argument("--out", metavar="DIR", help="also write the table, plot and JSON here (e.g. bench/results)")
    study.add_argument("--json", action="store_true", help="print the result as one JSON object on stdout")
    study.add_argument("-v", "--verbose", action="store_true", help="show Prefect's own logs")
    study.set_defaults(handler=_study)

    ui = sub.add_parser("ui", help="open the MLflow UI on the workspace's store")
    ui.add_argument("--port", type=int, default=5000)
    ui.add_argument("--host", default="127.0.0.1", help="bind address (loopback unless told otherwise)")
    ui.set_defaults(handler=_ui)
    return parser


def configure_environment(verbose: bool = False) -> Path:
    """Point Prefect at the workspace (unless the user configured it) before Prefect is imported."""
    from tasks.workspace import home

    root = home()
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise UserError(f"W2S_HOME {root} is not writable: {e.strerror}") from None
    if "PREFECT_API_URL" not in os.environ:
        os.environ.setdefault("PREFECT_HOME", str(root / "prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO" if verbose else "WARNING")
    os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("w2s").setLevel(logging.INFO)
    return root


def _split_items(items: list[str]) -> tuple[str | None, list[str]]:
    config_file, overrides = None, []
    for item in items:
        if "=" in item:
            overrides.append(item)
        elif config_file is None:
            config_file = item
        else:
            raise UserError(f"expected one config file and key=value overrides, got a second file {item!r}")
    return config_file, overrides


# name -> (config class, flow), as dotted paths so that `w2s --help` imports neither.
STUDIES = {
    "overlap": ("flows.study_config:OverlapStudyConfig", "flows.overlap_study:overlap_study"),
    "selection": ("flows.study_config:SelectionStudyConfig", "flows.selection_study:selection_study"),
    "methods": ("flows.study_config:MethodsStudyConfig", "flows.methods_study:methods_study"),
}


def _load(dotted: str):
    import importlib

    module, _, name = dotted.partition(":")
    return getattr(importlib.import_module(module), name)


def _config(items: list[str], schema=None):
    from flows.config import ConfigError, ExperimentConfig, load_config

    config_file, overrides = _split_items(items)
    try:
        return load_config(config_file, overrides, schema or ExperimentConfig)
    except ConfigError as e:
        raise UserError(str(e)) from None


def _execute(args, what: str, call) -> int:
    """Run a flow; a failure is one line (the traceback with -v), the MLflow run is marked FAILED."""
    try:
        result = call()
    except Exception as e:
        if args.verbose:
            raise
        print(f"w2s: error: the {what} failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result, sort_keys=True, default=str))
    else:
        print(result["table"] if "table" in result else format_summary(result))
        for path in result.get("written", []):
            print(f"wrote {path}")
    return 0


def _run(args) -> int:
    from flows.config import STAGES

    config = _config(args.items)
    unknown = [s for s in args.refresh if s not in STAGES]
    if unknown:
        raise UserError(f"--refresh: unknown stage '{unknown[0]}' (stages: {', '.join(STAGES)})")
    configure_environment(args.verbose)

    from flows.experiment import w2s_experiment

    return _execute(args, "experiment", lambda: w2s_experiment(config, tuple(args.refresh)))


def _study(args) -> int:
    schema, flow = STUDIES[args.name]
    config = _config(args.items, _load(schema))
    configure_environment(args.verbose)
    return _execute(args, f"{args.name} study", lambda: _load(flow)(config, args.out))


def format_summary(result: dict) -> str:
    m = result["metrics"]
    oracle = "  [oracle: epoch chosen on ground-truth val]" if result.get("select_on") == "oracle_val" else ""
    lines = [
        "",
        f"accuracy   weak {m['acc_weak']:.3f}   ceiling {m['acc_ceiling']:.3f}   w2s {m['acc_w2s']:.3f} ({result['method']}){oracle}",
        f"PGR        {m['pgr']:.3f} (accuracy)   {m['pgr_auroc']:.3f} (AUROC)"
        + ("   warning: ceiling ≈ weak, PGR is unreliable" if m.get("gap_too_small") else ""),
    ]
    if "acc_hard_w2s" in m:
        lines.append(
            f"hard-only  weak {m['acc_hard_weak']:.3f}   ceiling {m['acc_hard_ceiling']:.3f}   w2s {m['acc_hard_w2s']:.3f}"
        )
    lines.append(f"agreement  with teacher {m['agreement']:.3f} (teacher right {m['agreement_teacher_right']:.3f}, wrong {m['agreement_teacher_wrong']:.3f})")
    for s in result["overlap"]:
        true = f"  (true {s['true_density']:.3f}, overlap F1 {s['overlap_f1']:.2f})" if "true_density" in s else ""
        lines.append(f"overlap    {s['source']:<10} detected density {s['density']:.3f}{true}")
    sel = result["selection"]
    bought = ", ".join(f"{k}: {v}" for k, v in sel["points_per_source"].items())
    lines.append(f"sources    {sel['policy']} bought {bought}")
    hits = [n for n, r in result["stages"].items() if r["cached"]]
    lines.append(f"cache      {len(hits)}/{len(result['stages'])} stages cached" + (f": {', '.join(hits)}" if hits else ""))
    lines.append(f"mlflow     run {result['mlflow_run_id']}  (w2s ui to browse)")
    return "\n".join(lines)


def _ui(args) -> int:
    root = configure_environment()
    from tasks.workspace import mlflow_artifact_root, mlflow_uri

    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", mlflow_uri(),
           "--default-artifact-root", mlflow_artifact_root(), "--host", args.host, "--port", str(args.port), "--workers", "1"]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    print(f"MLflow UI for {root} on http://{args.host}:{args.port} (Ctrl-C to stop)", file=sys.stderr)
    os.execvpe(cmd[0], cmd, env)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
