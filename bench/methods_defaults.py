"""The default methods on the default data, as a new user runs them: one sweep, one seed.

    .venv/bin/python bench/methods_defaults.py

Runs ``w2s sweep method=xent,xent_hard,aux_conf,adapt_conf,csl seed=0`` in a fresh
workspace with the default config (three synthetic sources, the full-batch L-BFGS student)
and writes its table, data and plot to ``bench/results/methods_defaults/``, with the wall
time in ``timing.json``. docs/methods.md quotes the table.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine  # noqa: E402
from common import env as _env  # noqa: E402
from common import timed as _timed  # noqa: E402

COMMAND = ["sweep", "method=xent,xent_hard,aux_conf,adapt_conf,csl", "seed=0"]


def main() -> dict:
    out = RESULTS / "methods_defaults"
    home = Path(tempfile.mkdtemp(prefix="w2s-bench-"))
    seconds, _ = _timed([sys.executable, "-m", "flows.cli", *COMMAND, "--out", str(out)], _env(home))
    rows = json.loads((out / "sweep.json").read_text())
    timing = {"command": "w2s " + " ".join(COMMAND), "wall_s": round(seconds, 1), "machine": machine()}
    (out / "timing.json").write_text(json.dumps(timing, indent=2) + "\n")
    return {"timing": timing, "rows": rows}


if __name__ == "__main__":
    print(json.dumps(main()["timing"], indent=2))
