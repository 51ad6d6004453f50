"""The source-selection study (docs/research.md) as one Prefect flow over cached stages.

K synthetic sources of different overlap densities; each policy buys ``rounds`` pulls on
every seed, re-detecting overlap on all it holds after each pull; after every round its
W2S student is retrained on what it bought. Adding a policy computes only that policy.
"""

from __future__ import annotations


from prefect import flow
from prefect.runtime import flow_run

from flows import tracking
from flows.runner import StageRunner
from flows.study_config import SelectionStudyConfig
from models.selection import READS
from tasks.specs import BanditConfig
from tasks.ingest_grid import ingest_grid
from tasks.report_selection_study import report_selection_study
from tasks.select_grid import select_grid
from tasks.train_grid import train_grid_truth
from tasks.train_round_students import train_round_students


@flow(name="w2s-selection-study", log_prints=False)
def selection_study(config: SelectionStudyConfig, out_dir: str | None = None) -> dict:
    sizes = {"weak_train": config.weak_train_size, "w2s_train": config.pool_size, "test": config.test_size}
    per_split = {split: config.source_counts(n) for split, n in sizes.items()}
    layout = [[{split: per_split[split][k] for split in sizes} for k in range(len(config.densities))]]
    with tracking.parent_run(config, flow_run.get_id(), "selection-study") as run:
        stage = StageRunner(run)
        data = stage(ingest_grid, config.task, layout, config.seeds)
        weak = stage(train_grid_truth, config.weak, "weak", data, label="weak")
        selections, students = {}, {}
        for policy in config.policies:
            # Settings a policy does not read stay at their defaults, so changing
            # epsilon, say, recomputes epsilon_greedy alone.
            bandit = BanditConfig(**{k: getattr(config, k) for k in READS.get(policy, ())})
            selections[policy] = stage(
                select_grid, policy, bandit, config.rounds, config.pull_size, config.detector, data, weak,
                label=f"select_{policy}",
            )
            students[policy] = stage(
                train_round_students, config.strong, config.weak_labels, config.pull_size, data, weak,
                selections[policy], label=f"students_{policy}",
            )
        report = stage(report_selection_study, data, selections, students)

        summary = report.data
        for policy, rows in summary["curves"].items():
            named = [{"round": r["round"], **{f"{policy}.{k}": v for k, v in r.items() if k != "round"}} for r in rows]
            tracking.record_curves(run, named, step="round")
        result = tracking.finish_study(run, stage.records, report.files, report.headline, out_dir)
    return {"final": summary["final"], "checks": summary["checks"], **result, "config_hash": config.fingerprint()}
