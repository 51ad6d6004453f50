"""``w2s``: a thin command line over the flows.

    w2s run [CONFIG.yaml] [key=value ...] [--refresh STAGE ...] [--from STAGE ...] [--json] [--quiet]
    w2s plan [CONFIG.yaml] [key=value ...] [--refresh STAGE ...] [--from STAGE ...] [--json]
    w2s sweep [SWEEP.yaml] [CONFIG.yaml] [key=v1,v2 ...] [--runner threads|dask] [--out DIR] [--json] [--quiet]
    w2s study overlap|selection|methods [CONFIG.yaml] [key=value ...] [--out DIR] [--json] [--quiet]
    w2s ladder [CONFIG.yaml] models=A,B,C [mode=probe|finetune|lora] [seeds=N] [key=value ...] [--out DIR] [--json] [--quiet]
    w2s compare [--experiment E] [--filter TAG=V ...] [--metrics m1,m2] [--out DIR]
    w2s serve [--file deployments/prefect.yaml]
    w2s server start|stop|status [--json]
    w2s ui [--port 5000] [--experiment NAME]
    w2s report RUN_ID [--out FILE.html]
    w2s sources [--json]

Heavy modules (Prefect, MLflow, torch) are imported only once the arguments are known
to be good, so a mistyped key is answered at once. Commands that run flows talk to the
workspace's own Prefect server (flows/server.py), started on first use, unless
``PREFECT_API_URL`` names one or ``--no-server`` asks for Prefect's temporary API.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from flows.server import LocalServer, ServerError

EXIT_USAGE = 2


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except UserError as e:
        print(f"w2s: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except ServerError as e:
        print(f"w2s: error: {e}", file=sys.stderr)
        return 1


def entry() -> None:
    """The ``w2s`` command: ``main``, then a fast exit.

    The libraries a run imports leave millions of objects behind; the garbage collector
    would walk them again and again during the run and once more at interpreter exit (~4 s
    of a cached run's time). Collection is off while they are imported, what they built
    is then frozen out of the collector's reach, and the process leaves with ``os._exit``
    once stdout, stderr and the exit handlers (logging, MLflow, Prefect's workers) are done.
    """
    gc.disable()
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    import atexit

    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def settle_heap() -> None:
    """What the imports built stays for the whole run: keep the collector off it."""
    gc.freeze()
    gc.enable()


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
    _quiet_option(run)
    _server_option(run)
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
    _job_options(sweep, out_help="also write the table, plot and JSON here")
    sweep.set_defaults(handler=_sweep)

    ladder = sub.add_parser("ladder", help="a ladder of pretrained models, small to large: every (weak < strong) pair's W2S run")
    ladder.add_argument(
        "items", nargs="*", metavar="[CONFIG.yaml] models=A,B,C key=value",
        help="the models (small to large), ladder settings (mode, seeds, finetune_lrs) and experiment overrides",
    )
    _job_options(ladder, out_help="also write the table, plot and JSON here")
    ladder.set_defaults(handler=_ladder)

    study = sub.add_parser("study", help="run a study: overlap density, source selection, methods (docs/research.md)")
    study.add_argument("name", choices=sorted(STUDIES), help="which study")
    study.add_argument("items", nargs="*", metavar="[CONFIG.yaml] key=value", help="a YAML config and/or overrides")
    _job_options(study, out_help="also write the table, plot and JSON here (e.g. bench/results)")
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
    serve.set_defaults(handler=_serve, no_server=False)

    server = sub.add_parser("server", help="the workspace's local Prefect server: start it, stop it, say where it runs")
    server.add_argument("action", choices=("start", "stop", "status"))
    server.add_argument("--json", action="store_true", help="print the status as one JSON object on stdout")
    server.set_defaults(handler=_server)

    ui = sub.add_parser("ui", help="open the MLflow UI on the workspace's store")
    ui.add_argument("--port", type=int, default=5000)
    ui.add_argument("--host", default="127.0.0.1", help="bind address (loopback unless told otherwise)")
    ui.add_argument("--experiment", metavar="NAME", help="the experiment whose address is printed (default: the newest run's)")
    ui.set_defaults(handler=_ui)

    # --- w2s report ---
    report = sub.add_parser("report", help="write one experiment, sweep or study run as a self-contained HTML page")
    report.add_argument("run_id", metavar="RUN_ID", help="the MLflow run id (or its start, as the run summary prints it)")
    report.add_argument("--out", metavar="FILE.html", help="where the page goes (default: W2S_HOME/reports/RUN_ID.html)")
    report.set_defaults(handler=_report)
    # --- end w2s report ---

    sources = sub.add_parser("sources", help="list the named sources: bundled sets and NLP benchmark tasks (source=NAME)")
    sources.add_argument("--json", action="store_true", help="print the list as JSON on stdout")
    sources.set_defaults(handler=_sources)
    return parser


def _job_options(parser, out_help: str) -> None:
    """What every command that runs a job of many runs takes: where to copy its results, how
    to print them, how much to show, and which Prefect API to use."""
    parser.add_argument("--out", metavar="DIR", help=out_help)
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object on stdout")
    parser.add_argument("-v", "--verbose", action="store_true", help="show Prefect's own logs")
    _quiet_option(parser)
    _server_option(parser)


def _quiet_option(parser) -> None:
    parser.add_argument(
        "-q", "--quiet", action="store_true",
        help="print only the result: no stage lines or progress (an error still prints its one line)",
    )


def _server_option(parser) -> None:
    parser.add_argument(
        "--no-server", action="store_true",
        help="use Prefect's temporary API for this command instead of the workspace's server (as W2S_SERVER=ephemeral)",
    )


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


def configure_environment(verbose: bool = False, prefect_api: bool = False, no_server: bool = False) -> Path:
    """Point Prefect at the workspace (unless the user configured it) before Prefect is
    imported. ``prefect_api``: the command runs flows, so it needs the Prefect API: a
    team's (``PREFECT_API_URL``), the workspace's local server (started if none runs), or,
    with ``no_server`` or ``W2S_SERVER=ephemeral``, Prefect's temporary API."""
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
    # Its client's counterpart: on a terminal Prefect's client would otherwise print a
    # first-run telemetry notice into the command's output (and over --quiet).
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # Prefect's temporary API gives up after 20 s; on a busy 2-core machine its start alone can take longer.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
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
        # Prefect's temporary API (--no-server) shares this command's stderr, and the command
        # stops it at exit: a failed run exits right after its flow's last writes, and a
        # server stopped while it still records them had its database pool log the cancelled
        # connection's traceback through the root logger, after the command's error line.
        os.environ.setdefault("PREFECT_LOGGING_ROOT_LEVEL", "CRITICAL")
    check_servers_reachable()
    if prefect_api and "PREFECT_API_URL" not in os.environ and not ephemeral_mode(no_server):
        global LOCAL_SERVER
        from flows.server import ensure_server

        LOCAL_SERVER = ensure_server(root)  # starting, while this process imports what it needs
        os.environ["PREFECT_API_URL"] = LOCAL_SERVER.api_url
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("w2s").setLevel(logging.INFO)
    return root


LOCAL_SERVER: LocalServer | None = None  # the workspace's server, when this command uses it


def ephemeral_mode(no_server: bool = False) -> bool:
    mode = os.environ.get("W2S_SERVER", "local")
    if mode not in ("local", "ephemeral"):
        raise UserError(f"W2S_SERVER={mode!r}: expected 'local' (the workspace's server, the default) or 'ephemeral'")
    return no_server or mode == "ephemeral"


def prefect_settings():
    """Settings for the flows this command runs. Flow-run heartbeats are off unless a team's
    server is used: only its automations would act on them, and a sync flow waits up to a
    second at its end for the heartbeat thread to wake up and stop."""
    from contextlib import nullcontext

    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    if "PREFECT_API_URL" in os.environ and LOCAL_SERVER is None:
        return nullcontext()
    return temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None})


def prefect_api_ready() -> None:
    """Just before the first flow: the local server answers, or the temporary API's database is migrated."""
    settle_heap()
    if LOCAL_SERVER is not None:
        LOCAL_SERVER.wait_ready()
    else:
        migrate_local_prefect_db()


def migrate_local_prefect_db() -> None:
    """Prefect's temporary local API migrates its SQLite database as it starts, and runs
    started at once on a new workspace would migrate it together and collide. The first
    run migrates it under the flock the local server uses too; the temporary APIs then skip
    their own migration."""
    if "PREFECT_API_URL" in os.environ or "PREFECT_API_DATABASE_CONNECTION_URL" in os.environ:
        return  # a server, or a database someone else looks after
    from flows.server import migrate_prefect_db

    migrate_prefect_db(Path(os.environ["PREFECT_HOME"]))


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


def _execute(args, what: str, call, coming=None) -> int:
    """Run a flow; a failure is one line (the traceback with -v), the MLflow run is marked
    FAILED. Bad input found once the data is read exits 2, like a bad config; anything else 1.
    ``coming``: the stages the flow will call, for the live display to list as waiting."""
    from models.errors import BackboneUnavailable
    from tasks.errors import DataError

    prefect_api_ready()
    try:
        with prefect_settings(), progress_display(args, coming):
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


@contextmanager
def progress_display(args, coming=None) -> Iterator[None]:
    """What a command shows while its flow runs (flows/progress.py): with stderr on a
    terminal, a live view of the stages and the bars of long loops; else (a pipe, a log file,
    ``--json``, ``-v``) one line per stage and a progress line now and then; with
    ``--quiet``, nothing (errors excepted)."""
    from flows import progress

    if args.quiet:
        logging.getLogger("w2s").setLevel(logging.ERROR)
        yield
        return
    live = not (args.json or args.verbose) and sys.stderr.isatty() and os.environ.get("TERM") != "dumb"
    board = progress.Board(live=live)
    if live and coming is not None:
        board.plan(coming())
    progress.install(board)
    try:
        if live:
            from flows.progress_live import LiveView

            with LiveView(board):
                yield
        else:
            yield
    finally:
        progress.install(None)


def _check_hub_sources(configs: list) -> None:
    """A hub dataset that cannot be reached (offline, say) is refused before any run starts,
    in one line that says how to use a local copy instead."""
    from tasks.errors import DataError
    from tasks.real_data import check_hub_reachable

    try:
        for config in configs:
            for source in config.data.sources:
                check_hub_reachable(source)
    except DataError as e:
        raise UserError(str(e)) from None


def _sources(args) -> int:
    from flows.sources import format_sources, list_sources

    records = list_sources()
    print(json.dumps(records, indent=1) if args.json else format_sources(records))
    return 0


def _stages(args, config) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``--refresh`` / ``--from`` names, checked against the stages this config's DAG has."""
    if not (args.refresh or args.rerun_from):
        return (), ()
    from flows.plan import stage_names

    stages = stage_names(config)
    for option, names in (("--refresh", args.refresh), ("--from", args.rerun_from)):
        unknown = [s for s in names if s not in stages]
        if unknown:
            raise UserError(f"{option}: unknown stage '{unknown[0]}' (stages of this run: {', '.join(stages)})")
    return tuple(args.refresh), tuple(args.rerun_from)


def _run(args) -> int:
    config = _config(args.items)
    _check_hub_sources([config])
    configure_environment(args.verbose, prefect_api=True, no_server=args.no_server)
    refresh, rerun_from = _stages(args, config)  # read off the DAG's wiring: Prefect is configured by now

    from flows.experiment import w2s_experiment
    from flows.plan import coming_stages

    return _execute(args, "experiment", lambda: w2s_experiment(config, refresh, rerun_from),
                    coming=lambda: coming_stages(config))


def _plan(args) -> int:
    config = _config(args.items)
    configure_environment()
    refresh, rerun_from = _stages(args, config)

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
    _check_hub_sources([config.cell(axes) for axes in config.combinations()])
    configure_environment(args.verbose, prefect_api=True, no_server=args.no_server)

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
    if ephemeral_mode() and "PREFECT_API_URL" not in os.environ:  # a temporary API runs no scheduler
        raise UserError(
            "w2s serve needs a Prefect server with a scheduler: unset W2S_SERVER (the workspace's own server) "
            "or set PREFECT_API_URL to a running one"
        )
    configure_environment(args.verbose, prefect_api=True)
    from flows.deployments import load_deployments, serve

    try:
        deployments = load_deployments(args.file, args.only)
    except (OSError, ValueError) as e:
        raise UserError(str(e)) from None
    prefect_api_ready()
    serve(deployments)
    return 0


def _server(args) -> int:
    """``w2s server start|stop|status`` for the workspace's local Prefect server."""
    from flows.server import ensure_server, server_status, stop_server
    from tasks.workspace import home

    root = home()
    if args.action == "start":
        if "PREFECT_API_URL" in os.environ:
            raise UserError(f"PREFECT_API_URL={os.environ['PREFECT_API_URL']} names the server this workspace uses; unset it to start a local one")
        configure_environment()
        ensure_server(root, as_client=False).wait_ready()
    elif args.action == "stop":
        stopped = stop_server(root)
        print(f"stopped the Prefect server of {root} (pid {stopped.pid})" if stopped else f"no Prefect server runs for {root}",
              file=sys.stderr)
        return 0
    status = server_status(root)
    if "PREFECT_API_URL" in os.environ:
        status["prefect_api_url"] = os.environ["PREFECT_API_URL"]  # what commands use instead
    if args.json:
        print(json.dumps(status, sort_keys=True))
    elif status["running"]:
        print(f"Prefect server of {root}: {status['api_url']} (pid {status['pid']}, since {status['started']}, "
              f"{'healthy' if status['healthy'] else 'not answering'}, stops after {status['idle_stop_minutes']:g} min idle"
              f"{', commands running' if status['commands_running'] else ''}); log {status['log']}")
    else:
        print(f"no Prefect server runs for {root}; the next w2s run starts one")
    if "PREFECT_API_URL" in os.environ:
        print(f"commands use PREFECT_API_URL={os.environ['PREFECT_API_URL']} instead", file=sys.stderr)
    return 0


def _ladder(args) -> int:
    config = _ladder_config(args.items)
    configure_environment(args.verbose, prefect_api=True, no_server=args.no_server)
    from flows.ladder import ladder

    return _execute(args, "ladder", lambda: ladder(config, args.out))


def _ladder_config(items: list[str]):
    """``models=A,B,C`` and the ladder's other settings by name; every other ``key=value`` and
    a config file are the pairs' experiment config."""
    import yaml

    from flows.config import ConfigError, build_config, read_yaml_mapping
    from flows.study_config import LadderConfig

    config_file, overrides = _split_items(items)
    spec: dict = {"overrides": []}
    try:
        if config_file:
            spec["base"] = read_yaml_mapping(config_file)
        for item in overrides:
            key, _, raw = item.partition("=")
            if key in ("models", "finetune_lrs"):
                spec[key] = [yaml.safe_load(v) if key == "finetune_lrs" else v for v in split_top_level(raw) if v]
            elif key in ("mode", "seeds", "experiment"):
                spec[key] = yaml.safe_load(raw)
            else:
                spec["overrides"].append(item)
        return build_config([spec], schema=LadderConfig)
    except ConfigError as e:
        raise UserError(str(e)) from None


def _study(args) -> int:
    schema, flow = STUDIES[args.name]
    config = _config(args.items, _load(schema))
    configure_environment(args.verbose, prefect_api=True, no_server=args.no_server)
    return _execute(args, f"{args.name} study", lambda: _load(flow)(config, args.out))


def format_summary(result: dict) -> str:
    m = result["metrics"]
    oracle = "  [oracle: epoch chosen on ground-truth val]" if result.get("select_on") == "oracle_val" else ""
    lines = [
        "",
        f"accuracy   weak {_num(m['acc_weak'])}   ceiling {_num(m['acc_ceiling'])}   w2s {_num(m['acc_w2s'])} ({result['method']}){oracle}",
        f"PGR        {_num(m['pgr'])} (accuracy)   {_num(m['pgr_auroc'])} (AUROC)" + _gap_warning(m),
    ]
    for side, b in result.get("backbones", {}).items():
        how = {"probe": "frozen features, a head on top", "finetune": "fine-tuned", "lora": "LoRA adapters"}[b["mode"]]
        lines.append(f"backbone   {side} {b['name']} ({how})")
    if "acc_hard_w2s" in m:
        lines.append(
            f"hard-only  weak {_num(m['acc_hard_weak'])}   ceiling {_num(m['acc_hard_ceiling'])}   w2s {_num(m['acc_hard_w2s'])}"
        )
    for d in result.get("data", []):
        lines.append(format_data_line(d))
    lines.append(f"agreement  with teacher {_num(m['agreement'])} (teacher right {_num(m['agreement_teacher_right'])}, wrong {_num(m['agreement_teacher_wrong'])})")
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


def _num(value) -> str:
    """A metric to three places; a metric with no value (a cached NaN reads back as None) is "nan"."""
    return "nan" if value is None else f"{value:.3f}"


def format_data_line(d: dict) -> str:
    """Where a real source's rows came from: the summary's ``data`` line."""
    sizes = d["sizes"]
    train = sum(n for split, n in sizes.items() if split != "test")
    line = f"data       {d['source']:<10} {train} train rows, {sizes['test']} test rows from {d['test_from']}"
    if d.get("benchmark"):
        line += f"; {d['empty_dropped']} empty texts dropped"
        line += f"; hub commit {d['revision'][:12]}" if d.get("revision") else "; a local copy"
    return line


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
    # --- the address of the experiment served, in the UI's model-training view ---
    from flows.mlflow_ui import experiment_url, served_experiment

    try:
        served = served_experiment(args.experiment)
    except LookupError as e:
        raise UserError(str(e)) from None
    host = f"[{args.host}]" if ":" in args.host else args.host
    what = f"experiment {served[1]}" if served else "no runs yet"
    print(f"MLflow UI for {root} ({what}; Ctrl-C to stop):", file=sys.stderr)
    print(experiment_url(f"http://{host}:{args.port}", served[0] if served else None), flush=True)
    sys.stderr.flush()
    # --- end ---
    os.execvpe(cmd[0], cmd, env)
    return 0  # not reached


def _report(args) -> int:
    """``w2s report RUN_ID``: flows/report.py writes the page; this prints where."""
    configure_environment()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from flows.report import ReportError, write_report

    try:
        path = write_report(args.run_id, Path(args.out) if args.out else None)
    except ReportError as e:
        raise UserError(str(e)) from None
    except OSError as e:
        raise UserError(f"cannot write the report to {args.out or e.filename}: {e.strerror}") from None
    print(path)
    return 0


if __name__ == "__main__":
    entry()
