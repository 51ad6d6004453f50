"""Why adapt_conf collapsed under the full-batch L-BFGS student: epoch-by-epoch figures.

Runs the configured experiment up to the student's inputs (its own cached stages: the
points the selection bought and their weak labels), then fits the student head with the
adaptive-confidence loss two ways: with its targets (beta and the student's own argmax)
recomputed at every evaluation of the loss, as before, so that L-BFGS's line search sees
them move with the trial point; and with them fixed per optimiser step, as now. After
every epoch it records the test accuracy, the share of the most predicted class on test,
the mean beta and the weak-label validation loss. Writes JSON to stdout.

    python bench/diagnose_adapt_conf.py source=ucla_courses
    python bench/diagnose_adapt_conf.py source=ucla_levels
"""

from __future__ import annotations

import json
import sys


def pipeline_inputs(overrides: list[str]):
    """The experiment's own cached stages, up to the points its selection bought and their
    weak labels (what train_strong receives)."""
    import numpy as np
    from prefect import flow

    from flows import tracking
    from flows.config import load_config
    from flows.experiment import ingest_sources
    from flows.runner import StageRunner
    from tasks.artifacts import splits_of
    from tasks.select_sources import select_sources
    from tasks.train_weak import train_weak
    from tasks.weak_label import weak_label

    config = load_config(None, overrides)

    @flow(name="diagnose-adapt-conf")
    def upstream():
        with tracking.parent_run(config, None, "diagnose-adapt-conf") as run:
            stage = StageRunner(run)
            sources = ingest_sources(stage, config)
            weak = stage(train_weak, weak=config.weak, seed=config.seed, sources=sources)
            labels = stage(weak_label, weak=weak, sources=sources)
            selection = stage(
                select_sources, selection=config.selection.as_read(), overlap=config.overlap, seed=config.seed,
                labels=labels, sources=sources,
            )
            return sources, labels, selection

    sources, labels, selection = upstream()
    taken = [selection.taken(i) for i in range(len(sources))]
    x = np.concatenate([s.split("w2s_train").x[t] for s, t in zip(sources, taken)])
    weak = np.concatenate([labels.pool(i)[t] for i, t in enumerate(taken)])
    val, test = splits_of(sources, "val"), splits_of(sources, "test")
    return config, x, weak, val.x, labels.val, test.x, test.label


def trace(spec, loss_fn, tau, x, weak, x_val, weak_val, x_test, y_test, seed):
    """Per epoch: test accuracy, largest predicted-class share on test, mean beta, val loss."""
    import lightning as L
    import numpy as np
    import torch

    from models.classifier import Classifier, SoftLabelClassifier
    from models.losses import adaptive_confidence_beta
    from models.training import FullBatch, make_trainer

    torch.manual_seed(seed)
    data = FullBatch(x, weak)
    net = Classifier(x.shape[-1], weak.shape[-1], spec.arch, spec.hidden, 1)
    module = SoftLabelClassifier(net, C=spec.C, n_train=data.batch[2].sum(dim=-1), loss_fn=loss_fn,
                                 optimizer=spec.optimizer, lr=spec.lr, lbfgs_iters=spec.lbfgs_iters,
                                 total_steps=spec.epochs)
    module.val_batch = FullBatch(x_val, weak_val).batch
    rows = []

    class Record(L.Callback):
        def on_train_epoch_end(self, trainer, m):
            with torch.no_grad():
                test = net(torch.as_tensor(x_test))[0]
                train = net(torch.as_tensor(x))[0]
                beta = adaptive_confidence_beta(train, torch.log(torch.as_tensor(weak).clamp_min(1e-6)), tau)
            pred = test.argmax(-1).numpy()
            rows.append({
                "epoch": trainer.current_epoch,
                "test_acc": float(np.mean(pred == y_test)),
                "largest_class_share": float(np.bincount(pred).max() / len(pred)),
                "mean_beta": float(beta.mean()),
                "val_loss_weak": m.history[-1]["val_loss"],
            })

    make_trainer(spec.epochs, callbacks=[Record()]).fit(module, train_dataloaders=data)
    return rows


def main(overrides: list[str]) -> dict:
    from models.losses import AdaptConfLoss
    from models.methods import METHODS
    from models.head import fit_spec
    from models.training import fit_classifier, predict_probs

    config, x, weak, x_val, weak_val, x_test, y_test = pipeline_inputs(overrides)
    spec = fit_spec(config.strong)
    def test_acc(loss_fn=None) -> float:
        """The student as train_strong fits it: same spec, points, labels, seed, selection."""
        fit = fit_classifier(spec, x, weak, x_val, weak_val, config.seed, loss_fn=loss_fn)
        return float((predict_probs(fit.net, x_test).argmax(1) == y_test).mean())

    out = {
        "overrides": overrides,
        "n_train": len(x),
        "classes": int(weak.shape[1]),
        "weak_mean_max_prob": float(weak.max(axis=1).mean()),
        "xent_test_acc": test_acc(),
        "adapt_conf_default_test_acc": test_acc(METHODS["adapt_conf"].loss(METHODS["adapt_conf"].Params())),
        "runs": {},
    }
    for tau in (1.0, 0.5):
        loss = AdaptConfLoss(T=1.0, tau=tau, beta_ramp=0.0)

        def moving(logits, target, weights, step, total_steps, loss=loss):
            return loss(logits, target, weights, step, total_steps)  # targets from each evaluation's logits

        for name, fn in (("targets per evaluation", moving), ("targets per step", loss)):
            out["runs"][f"tau={tau}, {name}"] = trace(spec, fn, tau, x, weak, x_val, weak_val, x_test, y_test, config.seed)
    return out


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:]), indent=1))
