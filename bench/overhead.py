"""What the orchestration costs: cold run, cached rerun, empty-flow floor, Lightning vs plain torch.

    .venv/bin/python bench/overhead.py [--repeats 3]

(a) a cold default ``w2s run`` in a fresh workspace; (b) the same command again, fully
cached; (c) the floor: a fresh process that runs a Prefect flow with no tasks against the
same Prefect home; (d) the Lightning fit of the default ``train_strong`` stage against a
plain PyTorch loop doing the same work (same model, data, L-BFGS settings, per-epoch
validation, best-epoch keeping and early stop), on data of the default stage's size. (a)–(c) are separate processes, as a user
runs them; (b) and (c) alternate so that machine noise hits both. Results go to
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
from common import EMPTY_FLOW, RESULTS, ROOT, machine  # noqa: E402
from common import env as _env  # noqa: E402
from common import timed as _timed  # noqa: E402


def processes(repeats: int) -> dict:
    home = Path(tempfile.mkdtemp(prefix="w2s-bench-"))
    env = _env(home)
    run = [sys.executable, "-m", "flows.cli", "run", "--json"]
    empty = [sys.executable, "-c", EMPTY_FLOW]
    _timed(empty, env)  # creates the Prefect home, so the cold run pays only for the experiment
    cold, out = _timed(run, env)
    result = json.loads(out)
    cached, floor = [], []
    for _ in range(repeats):
        seconds, out = _timed(run, env)
        assert all(s["cached"] for s in json.loads(out)["stages"].values()), "rerun was not fully cached"
        cached.append(seconds)
        floor.append(_timed(empty, env)[0])
    return {
        "a_cold_run_s": round(cold, 2),
        "b_cached_rerun_s": [round(s, 2) for s in cached],
        "c_empty_flow_s": [round(s, 2) for s in floor],
        "b_over_c": round(statistics.median(cached) / statistics.median(floor), 3),
        "cold_stage_seconds": {k: v["seconds"] for k, v in result["stages"].items()},
        "default_metrics": {k: result["metrics"][k] for k in ("acc_weak", "acc_ceiling", "acc_w2s", "pgr")},
    }


def training(repeats: int) -> dict:
    """(d) in this process, on a stand-in for the default train_strong stage's input: the
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
                loss = module.objective(x, y)
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
        "d_lightning_fit_s": [round(t, 4) for t in times["lightning"]],
        "d_plain_loop_s": [round(t, 4) for t in times["plain"]],
        "d_ratio": round(ratio, 3),
        "d_setting": {"n_train": len(train), "n_val": len(val), **spec.__dict__},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--training-repeats", type=int, default=30)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    report = {
        "machine": machine(),
        **processes(args.repeats),
        **training(args.training_repeats),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "overhead.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
