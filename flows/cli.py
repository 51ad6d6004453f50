"""``w2s``: a thin command line over the flows.

    w2s run [CONFIG.yaml] [key=value ...] [--refresh STAGE ...] [--from STAGE ...] [--json]
    w2s plan [CONFIG.yaml] [key=value ...] [--refresh STAGE ...] [--from STAGE ...] [--json]
    w2s sweep [SWEEP.yaml] [CONFIG.yaml] [key=v1,v2 ...] [--runner threads|dask] [--out DIR] [--json]
    w2s study overlap|selection|methods [CONFIG.yaml] [key=value ...] [--out DIR] [--json]
    w2s compare [--experiment E] [--filter TAG=V ...] [--metrics m1,m2] [--out DIR]
    w2s serve [--file deployments/prefect.yaml]
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
import tempfile
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
    _config_items(run)
    _rerun_options(run)
    run.add_argument("--json", action="store_true", help="print the result as one JSON object on stdout")
    run.add_argument("-v", "--verbose", action="store_true", help="show Prefect's own logs")
    run.set_defaults(handler=_run)

    plan = sub.add_parser("plan", help="say which stages a run would recompute, and why, without running it")
    _config_items(plan)
    _rerun_options(plan)
    plan.add_argument("--json", action="store_true", help="print the plan as one JSON object on stdout")
    plan.set_defaults(handler=_plan)

    sweep = sub.add_parser("sweep", help="run the product of a grid of overrides as one flow, cells sharing cached stages")
    sweep.add_argument(
        "items", nargs="*", metavar="[SWEEP.yaml] [CONFIG.yaml] key=v1,v2",
        help="a sweep file (with a grid:), an experiment config, key=value overrides; a comma makes a grid axis",
    )
    sweep.add_argument("--name", help="tags every cell w2s.sweep=NAME (default: the sweep file's, or 'sweep')")
    sweep.add_argument("--runner", choices=("threads", "dask"), help="Prefect task runner for the cells (default threads)")
    sweep.add_argument("--workers", type=int, help="cells at once, or Dask workers of the local cluster")
    sweep.add_argument("--dask-address", help="a running Dask scheduler (tcp://HOST:PORT); implies --runner dask")
    sweep.add_argument("--out", metavar="DIR", help="also write the table, plot and JSON here")
    sweep.add_argument("--json", action="store_true", help="print the result as one JSON object on stdout")
    sweep.add_argument("-v", "--verbose", action="store_true", help="show Prefect's own logs")
    sweep.set_defaults(handler=_sweep)

    study = sub.add_parser("study", help="run a study: overlap density, source selection (RESEARCH.md §1), methods (§2–§4)")
    study.add_argument("name", choices=sorted(STUDIES), help="which study")
    study.add_argument("items", nargs="*", metavar="[CONFIG.yaml] key=value", help="a YAML config and/or overrides")
    study.add_argument("--out", metavar="DIR", help="also write the table, plot and JSON here (e.g. bench/results)")
    study.add_argument("--json", action="store_true", help="print the result as one JSON object on stdout")
    study.add_argument("-v", "--verbose", action="store_true", help="show Prefect's own logs")
    study.set_defaults(handler=_study)

    compare = sub.add_parser("compare", help="a table (and plot) of runs from the MLflow store: what differed, what came out")
    compare.add_argument("--experiment", help="an MLflow experiment name (default: every experiment)")
    compare.add_argument("--filter", action="append", default=[], metavar="TAG=V", help="keep runs with this tag value")
    compare.add_argument("--metrics", help="comma-separated metric names (default: acc_weak,acc_ceiling,acc_w2s,pgr)")
    compare.add_argument("--limit", type=int, default=200, help="the newest N matching runs")
    compare.add_argument("--out", metavar="DIR", help="where compare.png goes (default: W2S_HOME/compare)")
    compare.set_defaults(handler=_compare)

    serve = sub.add_parser("serve", help="serve the deployments of a prefect.yaml, with their schedules, from this process")
    serve.add_argument("--file", default=None, help="default: deployments/prefect.yaml of this project")
    serve.add_argument("--only", action="append", default=[], metavar="NAME", help="serve only these deployments")
    serve.add_argument("-v", "--verbose", action="store_true", help="show Prefect's own logs")
    serve.set_defaults(handler=_serve)

    ui = sub.add_parser("ui", help="open the MLflow UI on the workspace's store")
    ui.add_argument("--port", type=int, default=5000)
    ui.add_argument("--host", default="127.0.0.1", help="bind address (loopback unless told otherwise)")
    ui.set_defaults(handler=_ui)
    return parser


def _config_items(parser) -> None:
    parser.add_argument("items", nargs="*", metavar="[CONFIG.yaml] key=value", help="a YAML config and/or overrides")


def _rerun_options(parser) -> None:
    parser.add_argument(
        "--refresh", action="append", default=[], metavar="STAGE",
        help="recompute STAGE; what follows reruns only if its output changed",
    )
    parser.add_argument(
        "--from", dest="rerun_from", action="append", default=[], metavar="STAGE",
        help="recompute STAGE and everything downstream of it",
    )


def configure_environment(verbose: bool = False) -> Path:
    """Point Prefect at the workspace (unless the user configured it) before Prefect is imported."""
    from tasks.workspace import home

    root = home()
    try:
        root.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=root).close()  # a name of its own: runs starting at once do not collide
    except OSError as e:
        raise UserError(f"W2S_HOME {root} is not writable: {e.strerror}") from None
    if "PREFECT_API_URL" not in os.environ:
        os.environ.setdefault("PREFECT_HOME", str(root / "prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Caches that libraries would otherwise put in the user's home or /tmp live in the workspace.
    os.environ.setdefault("MPLCONFIGDIR", str(root / "matplotlib"))
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(root / "torchinductor"))
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO" if verbose else "WARNING")
    os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "info" if verbose else "error")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "INFO" if verbose else "WARNING")  # e.g. "creating tables"
    if not verbose:  # a failure is reported once, as the CLI's own line: no library's traceback besides it
        for logger in ("FLOW_RUNS", "TASK_RUNS"):
            os.environ.setdefault(f"PREFECT_LOGGING_LOGGERS_PREFECT_{logger}_LEVEL", "CRITICAL")
        os.environ.setdefault("DATASETS_VERBOSITY", "critical")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    check_servers_reachable()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("w2s").setLevel(logging.INFO)
    return root


def migrate_local_prefect_db() -> None:
    """Prefect's temporary local API migrates its SQLite database as it starts, and runs
    started at once on a new workspace would migrate it together and collide (alembic:
    "expected to match one row"). The first run migrates it under an flock, once per Prefect
    version; the servers then skip their own migration."""
    if "PREFECT_API_URL" in os.environ or "PREFECT_API_DATABASE_CONNECTION_URL" in os.environ:
        return  # a server, or a database someone else looks after
    import fcntl

    import prefect

    folder = Path(os.environ["PREFECT_HOME"])
    marker = folder / f".migrated-{prefect.__version__}"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".migrate.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ((folder / "prefect.db").exists() and marker.exists()):
            from prefect.server.database import provide_database_interface
            from prefect.utilities.asyncutils import run_coro_as_sync

            run_coro_as_sync(provide_database_interface().create_db())
            marker.touch()
    os.environ["PREFECT_API_DATABASE_MIGRATE_ON_START"] = "false"


def check_servers_reachable(timeout: float = 3.0) -> None:
    """A tracking or orchestration server named in the environment must answer now: MLflow's
    client would otherwise retry a dead address for minutes before the first stage."""
    import urllib.error
    import urllib.request

    servers = {"MLFLOW_TRACKING_URI": "mlflow server --host 127.0.0.1 --port PORT", "PREFECT_API_URL": "prefect server start"}
    for variable, start in servers.items():
        url = os.environ.get(variable, "")
        if not url.startswith(("http://", "https://")):
            continue
        try:  # both servers answer GET <url>/health
            urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=timeout).close()
        except urllib.error.HTTPError:
            continue  # something answers; its own errors are clearer than ours
        except (OSError, ValueError) as e:
            reason = getattr(e, "reason", e)
            raise UserError(
                f"{variable}={url} is unreachable ({reason}); start the server ({start}) "
                f"or unset {variable} to use the workspace's own store"
            ) from None


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
    """Run a flow; a failure is one line (the traceback with -v), the MLflow run is marked
    FAILED. Bad input found once the data is read exits 2, like a bad config; anything else 1."""
    from models.backbone import BackboneUnavailable
    from tasks.errors import DataError

    migrate_local_prefect_db()
    try:
        result = call()
    except (DataError, BackboneUnavailable) as e:
        if args.verbose:
            raise
        print(f"w2s: error: {e}", file=sys.stderr)
        return EXIT_USAGE
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
    failed = result.get("failed", [])
    if failed:  # the other cells finished and are reported; the command still says it failed
        print(f"w2s: error: {len(failed)} cell(s) of the {what} failed: {failed[0]['cell']}: {failed[0]['error']}", file=sys.stderr)
        return 1
    return 0


def _stages(args) -> tuple[tuple[str, ...], tuple[str, ...]]:
    from flows.config import STAGES

    for option, names in (("--refresh", args.refresh), ("--from", args.rerun_from)):
        unknown = [s for s in names if s not in STAGES]
        if unknown:
            raise UserError(f"{option}: unknown stage '{unknown[0]}' (stages: {', '.join(STAGES)})")
    return tuple(args.refresh), tuple(args.rerun_from)


def _run(args) -> int:
    config = _config(args.items)
    refresh, rerun_from = _stages(args)
    configure_environment(args.verbose)

    from flows.experiment import w2s_experiment

    return _execute(args, "experiment", lambda: w2s_experiment(config, refresh, rerun_from))


def _plan(args) -> int:
    config = _config(args.items)
    refresh, rerun_from = _stages(args)
    configure_environment()

    from flows.plan import format_plan, plan_experiment
    from tasks.errors import DataError

    try:
        steps = plan_experiment(config, refresh, rerun_from)
    except DataError as e:  # what cached data already shows (a real pool smaller than the budget)
        raise UserError(str(e)) from None
    print(json.dumps({"stages": steps}, sort_keys=True) if args.json else format_plan(steps))
    return 0


def _sweep(args) -> int:
    config = _sweep_config(args)
    configure_environment(args.verbose)

    from flows.sweep import run_sweep

    return _execute(args, "sweep", lambda: run_sweep(config, args.out))


def _sweep_config(args):
    """A sweep file (a mapping with ``grid``) and/or an experiment config file become the
    sweep's spec and ``base``; ``key=v1,v2`` items add grid axes, ``key=value`` fixed overrides."""
    import yaml

    from flows.config import ConfigError, build_config, read_yaml_mapping
    from flows.study_config import SweepConfig

    sweeps, bases = [], []  # in either order
    for item in (i for i in args.items if "=" not in i):
        try:
            loaded = read_yaml_mapping(item)
        except ConfigError as e:
            raise UserError(str(e)) from None
        (sweeps if "grid" in loaded else bases).append((item, loaded))
    if len(sweeps) > 1:
        raise UserError(f"expected one sweep file, got a second one {sweeps[1][0]!r}")
    spec = dict(sweeps[0][1]) if sweeps else {}
    if bases:
        if len(bases) > 1 or spec.get("base"):
            raise UserError(f"expected one experiment config, got a second one {bases[-1][0]!r}")
        spec["base"] = bases[0][1]
    axes, fixed = {}, []
    for item in (i for i in args.items if "=" in i):
        key, _, raw = item.partition("=")
        values = split_top_level(raw)
        if len(values) > 1:
            axes[key] = [yaml.safe_load(v) for v in values]
        else:
            fixed.append(item)
    options = {"name": args.name, "runner": args.runner or ("dask" if args.dask_address else None), "workers": args.workers,
               "dask_address": args.dask_address}
    spec = {**spec, **{k: v for k, v in options.items() if v is not None}}
    if axes:
        spec["grid"] = {**spec.get("grid", {}), **axes}
    spec["overrides"] = [*spec.get("overrides", []), *fixed]
    try:
        return build_config([spec], schema=SweepConfig)
    except ConfigError as e:
        raise UserError(str(e)) from None


def split_top_level(raw: str) -> list[str]:
    """``a,b`` → [a, b], but ``[1,2],[1,3]`` → two lists: commas inside brackets stay."""
    parts, depth, current = [], 0, ""
    for ch in raw:
        depth += ch in "[{"
        depth -= ch in "]}"
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    return [*parts, current]


def _compare(args) -> int:
    root = configure_environment()
    from flows.compare import compare_runs

    filters = {}
    for item in args.filter:
        tag, sep, value = item.partition("=")
        if not sep or not tag:
            raise UserError(f"--filter {item!r} is not of the form TAG=VALUE")
        filters[tag] = value
    metrics = [m for m in args.metrics.split(",") if m] if args.metrics else None
    try:
        result = compare_runs(args.experiment, filters, metrics, Path(args.out) if args.out else root / "compare", args.limit)
    except LookupError as e:
        raise UserError(str(e)) from None
    print(result.table, end="")
    print(f"wrote {result.plot}")
    return 0


def _serve(args) -> int:
    configure_environment(args.verbose)
    from flows.deployments import load_deployments, serve

    try:
        deployments = load_deployments(args.file, args.only)
    except (OSError, ValueError) as e:
        raise UserError(str(e)) from None
    if "PREFECT_API_URL" not in os.environ:  # Prefect's ephemeral API runs no scheduler: schedules would never fire
        raise UserError(
            "w2s serve needs a Prefect server: PREFECT_API_URL is not set (prefect server start --host 127.0.0.1 "
            "--port 4200, then export PREFECT_API_URL=http://127.0.0.1:4200/api)"
        )
    serve(deployments)
    return 0


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
        f"PGR        {m['pgr']:.3f} (accuracy)   {m['pgr_auroc']:.3f} (AUROC)" + _gap_warning(m),
    ]
    if result.get("backbone"):
        b = result["backbone"]
        how = "fine-tuned" if b["mode"] == "finetune" else "frozen features, heads on top"
        lines.append(f"backbone   {b['name']} ({how})")
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


def _gap_warning(m: dict) -> str:
    """Why a PGR on this line should not be read as a share of the weak-to-ceiling gap."""
    if m.get("gap_too_small"):
        return "   warning: ceiling ≈ weak, PGR is unreliable"
    below = [f"{name} by {-m[key]:.3f}" for name, key, flag in
             (("accuracy", "gap_acc", "gap_negative"), ("AUROC", "gap_auroc", "gap_auroc_negative")) if m.get(flag)]
    return f"   warning: ceiling below weak ({', '.join(below)}), PGR's sign is inverted" if below else ""


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
