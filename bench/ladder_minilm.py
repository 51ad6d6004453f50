"""The pretrained ladder that runs here, offline, on CPU: the bundled MiniLM and its first-1-
and first-2-layer cuts, on the bundled text sources, frozen (a linear probe each) and fine-tuned.

    .venv/bin/python bench/ladder_minilm.py [--only probe_courses ...]

Each run is a ``w2s ladder`` command in a fresh workspace (its tables, PGR matrices and
figures go to ``bench/results/ladder/<name>/``); ``bench/results/ladder/runs.json`` records
each command, how long it took and the machine. docs/backbones.md quotes the results.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, env, machine, stop_servers, timed  # noqa: E402

MODELS = "models=minilm:1,minilm:2,minilm"
RUNS = {
    "probe_courses": [MODELS, "seeds=5", "source=ucla_courses"],
    "probe_levels": [MODELS, "seeds=5", "source=ucla_levels", "selection.policy=all"],
    # Fine-tuning every model on CPU takes minutes a fit: fewer seeds and epochs.
    "finetune_courses": [MODELS, "mode=finetune", "seeds=2", "source=ucla_courses", "strong.backbone.finetune_epochs=2",
                         "strong.backbone.finetune_batch_size=32", "strong.backbone.finetune_lr=1e-4",
                         "strong.backbone.max_length=32"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=sorted(RUNS))
    args = parser.parse_args()
    out = RESULTS / "ladder"
    log = out / "runs.json"
    done = json.loads(log.read_text()) if log.exists() else {}
    for name in args.only or RUNS:
        work = Path(tempfile.mkdtemp(prefix=f"w2s-ladder-{name}-"))
        command = [sys.executable, "-m", "flows.cli", "ladder", *RUNS[name], "--out", str(out / name), "--json"]
        started = time.perf_counter()
        try:
            _, stdout = timed(command, env(work / "home"))
        finally:
            stop_servers(work)
        result = json.loads(stdout)
        done[name] = {
            "command": "w2s ladder " + " ".join(RUNS[name]) + f" --out bench/results/ladder/{name}",
            "seconds": round(time.perf_counter() - started, 1),
            "computed": {k: v["computed"] for k, v in result["stages"].items()},
            "machine": machine(),
        }
        out.mkdir(parents=True, exist_ok=True)
        log.write_text(json.dumps(done, indent=1) + "\n")
        print(result["table"], flush=True)


if __name__ == "__main__":
    main()
