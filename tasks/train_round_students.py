"""Stage ``train_round_students``: after every round of a policy, the W2S student on what it bought.

Per seed, one vectorised fit holds a student per round (round ``t`` trains on the points
collected by then, with their weak labels), all scored on the seed's test set.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from models.metrics import accuracy_by_cell
from models.progress import meter
from models.selection import collected_after
from models.head import fit_spec
from tasks.grid_artifacts import GridData, GridModel, GridSelection, RoundStudents
from tasks.select_grid import source_rows
from tasks.specs import ModelConfig
from tasks.stage import StageOutput, cached_stage


@cached_stage(RoundStudents)
def train_round_students(
    out: StageOutput,
    model: ModelConfig,
    weak_labels: Literal["hard", "soft"],
    pull_size: int,
    data: GridData,
    weak: GridModel,
    selection: GridSelection,
) -> None:
    from models.labels import hard_labels
    from models.training import fit_many

    pool, test = data.split("w2s_train"), data.split("test")
    targets = weak.pool_probs
    if weak_labels == "hard":
        targets = hard_labels(targets)
    cells = data.cells
    arms = selection.series("arms")  # (seeds, rounds)
    n_rounds, n_sources = arms.shape[1], len(cells[0]["true_density"])
    acc = np.empty(arms.shape)
    done = meter("cells", len(cells))
    for i, cell in enumerate(cells):
        rows = source_rows(pool, cell["cell"], n_sources)
        taken = collected_after(arms[i], n_sources, pull_size)  # (rounds, sources)
        train_rows = [np.concatenate([rows[k][: taken[t, k]] for k in range(n_sources)]) for t in range(n_rounds)]
        ids = np.concatenate([np.full(len(r), t) for t, r in enumerate(train_rows)])
        flat = np.concatenate(train_rows)
        test_rows = np.flatnonzero(test.cell == cell["cell"])
        x_eval = np.tile(test.x[test_rows], (n_rounds, 1))
        eval_ids = np.repeat(np.arange(n_rounds), len(test_rows))
        probs = fit_many(fit_spec(model), pool.x[flat], targets[flat], ids, x_eval, eval_ids, n_rounds, seed=cell["seed"])
        acc[i] = accuracy_by_cell(probs, np.tile(test.label[test_rows], n_rounds), eval_ids, n_rounds)
        done.advance()
    done.close()
    RoundStudents.write(out, acc)
