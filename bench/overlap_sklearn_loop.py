"""The overlap-density study as a plain loop: scikit-learn logistic regressions, no caching,
no tracking. The baseline that bench/overlap_speed.py times the project's study against.

Same grid, seeds, draws (models.synthetic, the same random streams), detectors and
variants as ``w2s study overlap``; one ``LogisticRegression`` per model per cell.

    python bench/overlap_sklearn_loop.py [key=value ...]    # overrides as for the study
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

from flows.config import load_config  # noqa: E402
from flows.study_config import OverlapStudyConfig  # noqa: E402
from models.overlap import detect_overlap  # noqa: E402
from models.synthetic import HARD, OVERLAP, draw_theta, sample_mixture, scale_counts  # noqa: E402


def run(config: OverlapStudyConfig) -> dict:
    task, cells = config.task, config.cells()
    results = []
    for seed in range(config.seeds):
        theta = draw_theta(np.random.default_rng([seed, 0]), task.d_easy, task.d_hard)
        for g, counts in enumerate(cells):
            rng = np.random.default_rng([seed, 2, g, 0])
            split = {
                s: sample_mixture(rng, theta, task.d_easy, scale_counts(counts.model_dump(), getattr(config.splits, s)), task.noise_var)
                for s in ("weak_train", "w2s_train", "test")
            }
            train, pool, test = split["weak_train"], split["w2s_train"], split["test"]
            hard_test = test.group == HARD
            weak = LogisticRegression(C=config.weak.C).fit(train.x_weak, train.label)
            ceiling = LogisticRegression(C=config.ceiling.C).fit(train.x, train.label)
            pool_probs = weak.predict_proba(pool.x_weak)
            weak_labels = pool_probs.argmax(axis=1)
            subsets = {"w2s_true_overlap": pool.group == OVERLAP, "w2s_all": np.ones(len(pool), bool)}
            for d in config.detectors:
                subsets[f"w2s_detected_{d}"] = detect_overlap(pool_probs, pool.x, d).groups == OVERLAP
            row = {"seed": seed, "grid": g}
            for name, model, x in (("weak", weak, test.x_weak), ("ceiling", ceiling, test.x)):
                pred = model.predict(x)
                row[f"acc_{name}"], row[f"hard_{name}"] = np.mean(pred == test.label), np.mean(pred[hard_test] == test.label[hard_test])
            for name, keep in subsets.items():
                if keep.sum() == 0 or len(np.unique(weak_labels[keep])) < 2:
                    pred = np.zeros(len(test), dtype=np.int64)  # nothing to learn from: a constant guess
                else:
                    pred = LogisticRegression(C=config.strong.C).fit(pool.x[keep], weak_labels[keep]).predict(test.x)
                row[f"acc_{name}"], row[f"hard_{name}"] = np.mean(pred == test.label), np.mean(pred[hard_test] == test.label[hard_test])
            results.append(row)
    return {"cells": results}


if __name__ == "__main__":
    started = time.perf_counter()
    out = run(load_config(None, sys.argv[1:], OverlapStudyConfig))
    out["seconds"] = time.perf_counter() - started
    print(json.dumps({"seconds": out["seconds"], "cells": len(out["cells"])}))
