"""Every table of docs/research.md made again: the commands of its ``studies`` block.

    .venv/bin/python bench/studies.py            # all of them (~15 min on 2 cores)
    .venv/bin/python bench/studies.py --list     # what would run
    .venv/bin/python bench/studies.py --only 0   # the first command alone

The commands are read from docs/research.md itself, so the page and what reproduces it
cannot drift apart. They run in order in one fresh workspace (a later study reuses what an
earlier one cached, as a user's would), and each writes its table, data and plot to its
``--out`` folder under ``bench/results``. The wall time of each lands in
``bench/results/studies_timing.json``.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, ROOT, machine, stop_servers  # noqa: E402
from common import env as _env  # noqa: E402
from common import timed as _timed  # noqa: E402

DOC = ROOT / "docs" / "research.md"
MARKER = "studies"


def documented_commands() -> list[list[str]]:
    """The ``w2s`` commands of the doc's block after ``<!-- studies -->``, split as a shell would."""
    block = re.search(rf"<!-- {MARKER} -->\n```bash\n(.*?)```", DOC.read_text(), re.S)
    if block is None:
        raise SystemExit(f"{DOC}: no bash block after <!-- {MARKER} -->")
    commands = [shlex.split(line, comments=True) for line in block.group(1).splitlines()]
    return [c for c in commands if c and c[0] == "w2s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--list", action="store_true", help="print the commands and stop")
    parser.add_argument("--only", type=int, action="append", help="run only the command at this index (0-based)")
    args = parser.parse_args()
    commands = documented_commands()
    chosen = [commands[i] for i in args.only] if args.only else commands
    if args.list:
        print("\n".join(shlex.join(c) for c in chosen))
        return
    home = Path(tempfile.mkdtemp(prefix="w2s-bench-"))
    runs = []
    try:
        for command in chosen:
            seconds, _ = _timed([sys.executable, "-m", "flows.cli", *command[1:]], _env(home))
            runs.append({"command": shlex.join(command), "wall_s": round(seconds, 1)})
            print(json.dumps(runs[-1]), flush=True)
    finally:
        stop_servers(home)
    (RESULTS / "studies_timing.json").write_text(json.dumps({"runs": runs, "machine": machine()}, indent=2) + "\n")


if __name__ == "__main__":
    main()
