"""What the orchestration costs: cold run, cached rerun, the floor, ephemeral mode, Lightning.

    .venv/bin/python bench/overhead.py [--repeats 5]

Each repeat, in a fresh workspace, runs as separate processes as a user would, in this
order: (a) a cold default ``w2s run`` in the empty workspace (it starts the workspace's
Prefect server: ``server_start_s`` is that start alone, the time until the server's state
file names its port, from the server's own log of its start); then, alternating so that
machine noise hits all of them, (b) the same command again, fully cached, (c) the floor:
a fresh process running a Prefect flow of one trivial task against the same server, as a
user would write it (``c_floor_same_settings_s``: the same flow with the settings w2s
gives its own flows, heartbeats off and the collector frozen after imports), and (d) the
cached rerun in ephemeral mode (``--no-server``: Prefect's temporary API, the way every
command ran before the local server). (e) is the Lightning fit of the default
``train_strong`` stage against a plain PyTorch loop doing the same work. Results go to
``bench/results/overhead.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, ROOT, machine  # noqa: E402
from common import env as _env  # noqa: E402
from common import timed as _timed  # noqa: E402

ONE_TASK_FLOW = """
from prefect import flow, task

@task
def one():
    return 1

@flow(name="one-task")
def one_task():
    return one()

one_task()
"""

# The same flow run the way w2s runs its own (flows/cli.py: entry, settle_heap, prefect_settings).
ONE_TASK_FLOW_SAME_SETTINGS = """
import atexit, gc, os, sys
gc.disable()
from prefect import flow, task
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

@task
def one():
    return 1

@flow(name="one-task")
def one_task():
    return one()

gc.freeze()
gc.enable()
with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
    one_task()
atexit._run_exitfuncs()
sys.stdout.flush()
os._exit(0)
"""


def median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def processes(repeats: int) -> dict:
    run = [sys.executable, "-m", "flows.cli", "run", "--json"]
    times = {k: [] for k in ("a", "server_start", "b", "c", "c_same", "d")}
    result = None
    for _ in range(repeats):
        home = Path(tempfile.mkdtemp(prefix="w2s-bench-"))
        env = _env(home)
        seconds, out = _timed(run, env)
        times["a"].append(seconds)
        times["server_start"].append(_server_start_seconds(home))
        result = json.loads(out)
        assert not any(s["cached"] for s in result["stages"].values()), "the cold run found a cache"
        state = json.loads((home / "server" / "state.json").read_text())
        server_env = {**env, "PREFECT_API_URL": f"http://127.0.0.1:{state['port']}/api"}
        for _ in range(2):  # two rounds per workspace, alternating
            seconds, out = _timed(run, env)
            assert all(s["cached"] for s in json.loads(out)["stages"].values()), "rerun was not fully cached"
            times["b"].append(seconds)
            times["c"].append(_timed([sys.executable, "-c", ONE_TASK_FLOW], server_env)[0])
            times["c_same"].append(_timed([sys.executable, "-c", ONE_TASK_FLOW_SAME_SETTINGS], server_env)[0])
            seconds, out = _timed([*run, "--no-server"], env)
            assert all(s["cached"] for s in json.loads(out)["stages"].values()), "ephemeral rerun was not fully cached"
            times["d"].append(seconds)
        _timed([sys.executable, "-m", "flows.cli", "server", "stop"], env)
    return {
        "a_cold_run_s": [round(t, 2) for t in times["a"]],
        "a_server_start_s": [round(t, 2) for t in times["server_start"]],
        "b_cached_rerun_s": [round(t, 2) for t in times["b"]],
        "c_floor_one_task_flow_s": [round(t, 2) for t in times["c"]],
        "c_floor_same_settings_s": [round(t, 2) for t in times["c_same"]],
        "d_cached_rerun_ephemeral_s": [round(t, 2) for t in times["d"]],
        "medians": {
            "a_cold_run_s": median(times["a"]),
            "a_server_start_s": median(times["server_start"]),
            "a_cold_run_without_server_start_s": median([a - s for a, s in zip(times["a"], times["server_start"])]),
            "b_cached_rerun_s": median(times["b"]),
            "c_floor_one_task_flow_s": median(times["c"]),
            "c_floor_same_settings_s": median(times["c_same"]),
            "d_cached_rerun_ephemeral_s": median(times["d"]),
        },
        "b_over_c": round(statistics.median(times["b"]) / statistics.median(times["c"]), 3),
        "b_over_c_same_settings": round(statistics.median(times["b"]) / statistics.median(times["c_same"]), 3),
        "d_over_b": round(statistics.median(times["d"]) / statistics.median(times["b"]), 3),
        "cold_stage_seconds": {k: v["seconds"] for k, v in result["stages"].items()},
        "default_metrics": {k: result["metrics"][k] for k in ("acc_weak", "acc_ceiling", "acc_w2s", "pgr")},
    }


def _server_start_seconds(home: Path) -> float:
    """From the server's launch (its log's start line) to its state file naming its port,
    plus the wait until it answered: the server writes ``ready_after_s`` in its log."""
    log = (home / "server" / "server.log").read_text()
    for line in log.splitlines():
        if line.startswith("--- ready after"):
            return float(line.split()[3])
    raise SystemExit(f"the server's log has no start time: {log[-500:]}")


def training(repeats: int) -> dict:
    """(e) in this process, on a stand-in for the default train_strong stage's input: the
    same budget of synthetic points, task and validation size, with soft labels that are
    0.9 / 0.1 on the true class (the stage's weak labels would need the whole DAG)."""
    import numpy as np
    import torch

    from flows.config import ExperimentConfig
    from models.classifier import Classifier, SoftLabelClassifier
    from models.losses import soft_cross_entropy
    from models.synthetic import draw_theta, sample_mixture
    from models.training import FitSpec, fit_classifier

    cfg = ExperimentConfig()
    s = cfg.strong
    spec = FitSpec(arch=s.arch, hidden=s.hidden, C=s.C, optimizer=s.optimizer, lr=s.lr, epochs=s.epochs,
                   lbfgs_iters=s.lbfgs_iters, patience=s.patience)
    rng = np.random.default_rng(0)
    task = cfg.data.task
    theta = draw_theta(rng, task.d_easy, task.d_hard)
    budget = cfg.selection.rounds * cfg.selection.pull_size
    train = sample_mixture(rng, theta, task.d_easy, {g: budget // 3 for g in ("easy", "hard", "overlap")}, task.noise_var)
    val = sample_mixture(rng, theta, task.d_easy, {"easy": 250, "hard": 250, "overlap": 160}, task.noise_var)
    soft = lambda m: np.c_[1 - (m.label * 0.8 + 0.1), m.label * 0.8 + 0.1].astype(np.float32)  # noqa: E731

    def lightning_fit():
        return fit_classifier(spec, train.x, soft(train), val.x, soft(val), seed=0)

    def plain_fit():
        torch.manual_seed(0)
        net = Classifier(train.x.shape[1], 2, spec.arch, spec.hidden, spec.replicas)
        module = SoftLabelClassifier(net, spec.C, len(train.x), optimizer=spec.optimizer, lr=spec.lr,
                                     lbfgs_iters=spec.lbfgs_iters)
        opt = module.configure_optimizers()
        x, y = torch.as_tensor(train.x), torch.as_tensor(soft(train))
        xv, yv = torch.as_tensor(val.x), torch.as_tensor(soft(val))
        best, best_epoch, best_state = float("inf"), -1, None
        for epoch in range(spec.epochs):
            def closure():
                opt.zero_grad()
                loss = module.objective(x, y, None)
                loss.backward()
                return loss
            opt.step(closure)
            with torch.no_grad():
                val_loss = float(soft_cross_entropy(net(xv), yv))
            if val_loss < best * (1 - 1e-4):
                best, best_epoch, best_state = val_loss, epoch, copy.deepcopy(net.state_dict())
            elif epoch - best_epoch >= spec.patience:
                break
        net.load_state_dict(best_state)
        return net

    lightning_fit(), plain_fit()  # warm-up: first calls pay one-off initialisation
    times = {"lightning": [], "plain": []}
    for _ in range(repeats):
        for name, fn in (("lightning", lightning_fit), ("plain", plain_fit)):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    ratio = statistics.median(times["lightning"]) / statistics.median(times["plain"])
    return {
        "e_lightning_fit_s": [round(t, 4) for t in times["lightning"]],
        "e_plain_loop_s": [round(t, 4) for t in times["plain"]],
        "e_ratio": round(ratio, 3),
        "e_setting": {"n_train": len(train), "n_val": len(val), **spec.__dict__},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="fresh workspaces; each gives one (a) and two (b, c, d)")
    parser.add_argument("--training-repeats", type=int, default=30)
    parser.add_argument("--out", type=Path, default=RESULTS / "overhead.json")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    report = {
        "command": " ".join(["python bench/overhead.py", *sys.argv[1:]]),
        "machine": machine(),
        **processes(args.repeats),
        **training(args.training_repeats),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["medians"], indent=2))
    print(f"b/c {report['b_over_c']} (same settings {report['b_over_c_same_settings']}), d/b {report['d_over_b']}; "
          f"wrote {args.out}")


if __name__ == "__main__":
    main()
