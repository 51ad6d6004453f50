"""The bundled MiniLM and its first-k-layer cuts on this CPU: frozen features/s, fine-tuning steps/s.

    python bench/backbones_cpu.py [--repeats 3] [--finetune-n 512] [--threads 1]

Features: ``models.backbone.TextEncoder(NAME).encode`` over every course title of the bundled
``ucla_courses`` source (2,706 texts, batch 64, at most 256 tokens), for ``minilm``,
``minilm:2`` and ``minilm:1``; the model is loaded once per backbone and not timed; each
backbone's runs alternate with the others', median reported. Fine-tuning: optimiser steps/s
of ``models.finetune.finetune_classifier`` on ``minilm:2`` (full fine-tuning, fp32, batch 16,
one epoch on ``--finetune-n`` titles, division labels), timed from the call to its end (model
loading included). Results go to ``bench/results/backbones_cpu.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, ROOT, machine  # noqa: E402

sys.path.insert(0, str(ROOT))

BACKBONES = ("minilm", "minilm:2", "minilm:1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--finetune-n", type=int, default=512)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads; on a shared 2-core machine a second thread's spin-waiting made encoding 2-3x slower")
    args = parser.parse_args()

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)

    from models.backbone import TextEncoder
    from models.finetune import FinetuneSpec, encode_inputs, finetune_classifier, optimizer_steps
    from tasks.bundled import load_bundled

    rows = load_bundled("ucla_courses")
    texts, divisions = rows["course"], rows["division"]
    encoders = {name: TextEncoder(name, device="cpu") for name in BACKBONES}
    for encoder in encoders.values():  # warm-up
        encoder.encode(texts[:128], args.batch_size)
    rates = {name: [] for name in BACKBONES}
    for _ in range(args.repeats):
        for name, encoder in encoders.items():
            start = time.perf_counter()
            encoder.encode(texts, args.batch_size)
            rates[name].append(round(len(texts) / (time.perf_counter() - start), 1))

    names = sorted(set(divisions))
    labels = np.array([names.index(d) for d in divisions])
    rng = np.random.default_rng(0)
    pick = rng.choice(len(texts), size=args.finetune_n, replace=False)
    inputs = encode_inputs("minilm:2", texts=[texts[i] for i in pick], max_length=64)
    targets = np.eye(len(names), dtype=np.float32)[labels[pick]]
    spec = FinetuneSpec(epochs=1, lr=5e-5, batch_size=16, accelerator="cpu", precision="32-true")
    finetune_classifier("minilm:2", spec, inputs, targets, None, None, seed=0)  # warm-up
    steps = optimizer_steps(len(targets), spec)
    step_rates = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        finetune_classifier("minilm:2", spec, inputs, targets, None, None, seed=0)
        step_rates.append(round(steps / (time.perf_counter() - start), 2))

    report = {
        "texts": len(texts),
        "batch_size": args.batch_size,
        "features_per_s": {name: {"runs": r, "median": statistics.median(r)} for name, r in rates.items()},
        "layers": {name: encoders[name].model.config.num_hidden_layers for name in BACKBONES},
        "finetune_minilm_2": {
            "n_train": len(targets), "batch_size": spec.batch_size, "max_tokens": 64, "steps": steps,
            "steps_per_s": step_rates, "median_steps_per_s": statistics.median(step_rates),
            "median_samples_per_s": round(statistics.median(step_rates) * spec.batch_size, 1),
        },
        "torch_threads": torch.get_num_threads(),
        "machine": machine(),
        # Other work on a shared machine slows every figure here: its load, as the run ended.
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "command": "python bench/backbones_cpu.py " + " ".join(sys.argv[1:]),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "backbones_cpu.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
