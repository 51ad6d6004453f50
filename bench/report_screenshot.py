"""``w2s report`` pages as a reader sees them: rendered by headless Chromium from the file
alone (a ``file://`` address, no server), checked, and kept as pictures.

    .venv/bin/python bench/report_screenshot.py --home DIR RUN_ID [RUN_ID ...]
    .venv/bin/python bench/report_screenshot.py --make      # small runs of each kind first

``--make`` records one experiment, one sweep and one overlap study of tests/small.yaml's
size in a fresh workspace (the workspace's own Prefect server, stopped at the end). Each
run's page is written by ``w2s report RUN_ID --out …``, opened in Chromium, and checked:
images are ``data:`` URIs that decode to non-blank pictures, nothing is fetched from
elsewhere (no script, no style sheet, no remote image). The whole page is saved as
``bench/results/report_<kind>.png``; one JSON line per page says what was found.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import browser  # noqa: E402  (bench/ is no package)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
WIDTH = 1200

# What --make records (docs/tracking.md shows these commands): one small run of each kind,
# run from the repository root.
MAKE = {
    "experiment": ["run", "tests/small.yaml"],
    "sweep": ["sweep", "tests/small.yaml", "method=xent,aux_conf", "seed=0,1", "--name", "report-demo"],
    "study": ["study", "overlap", "seeds=2", "overlap_counts=[5,40]", "detection_check.easy=60",
              "detection_check.hard=60", "detection_check.overlap=60"],
}

PAGE_FACTS = """(() => ({
  kind: (document.querySelector('.kind') || {}).textContent || '',
  title: document.title,
  text: document.body.innerText,
  sections: [...document.querySelectorAll('h2')].map(h => h.textContent),
  scripts: document.scripts.length,
  stylesheets: document.querySelectorAll('link[rel~="stylesheet"]').length,
  remote: [...document.querySelectorAll('[src],[href]')].map(e => e.getAttribute('src') || e.getAttribute('href'))
            .filter(u => /^(https?:)?\\/\\//.test(u)),
}))()"""


def w2s(home: Path, *args: str, timeout: float = 900, **variables: str) -> subprocess.CompletedProcess:
    """``w2s ARGS`` with ``home`` as its workspace (``python -m flows.cli`` is the entry point)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(W2S_HOME=str(home), **variables)
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def inspect_page(html: Path, picture: Path | None = None, width: int = WIDTH) -> dict:
    """Open the report file in Chromium; what it shows (text, sections, images and whether
    they are embedded and non-blank, anything fetched from elsewhere), and its picture."""
    with browser.page((width, 900)) as tab:
        tab.open(Path(html).resolve().as_uri(), until="document.readyState === 'complete'")
        facts = tab.evaluate(PAGE_FACTS)
        facts["images"] = tab.evaluate(browser.image_check_js())
        if picture is not None:
            tab.screenshot(picture, full_page=True)
    return facts


def report_picture(home: Path, run_id: str, picture: Path | None = None, html: Path | None = None) -> dict:
    """``w2s report RUN_ID`` into ``html`` (a temporary file if None), then ``inspect_page``;
    ``picture`` defaults to bench/results/report_<kind>.png."""
    with tempfile.TemporaryDirectory(prefix="w2s-report-") as scratch:
        html = html or Path(scratch) / f"{run_id}.html"
        done = w2s(home, "report", run_id, "--out", str(html), timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"w2s report {run_id} failed ({done.returncode}): {done.stderr.strip()}")
        kind = re.search(r'<span class="kind">([a-z]+)</span>', html.read_text()).group(1)
        facts = inspect_page(html, picture or RESULTS / f"report_{kind}.png")
    return {**facts, "printed": done.stdout.strip(), "picture": str(picture or RESULTS / f"report_{kind}.png")}


def problems(facts: dict) -> list[str]:
    """What makes a page not self-contained or its figures unreadable."""
    found = [f"fetches {u}" for u in facts["remote"]]
    found += [f"{facts['scripts']} script(s)"] if facts["scripts"] else []
    found += [f"{facts['stylesheets']} linked style sheet(s)"] if facts["stylesheets"] else []
    for image in facts["images"]:
        if image["scheme"] != "data":
            found.append(f"image {image['alt']} is not embedded ({image['scheme']}:)")
        if not image["width"] or image["colours"] < 2:
            found.append(f"image {image['alt']} is blank or did not decode")
    if not facts["images"]:
        found.append("no figure")
    return found


def make_runs(home: Path) -> dict[str, str]:
    """One small run of each kind in ``home``; their run ids by kind."""
    ids = {}
    try:
        for kind, args in MAKE.items():
            done = w2s(home, *args, "--json")
            if done.returncode != 0:
                raise SystemExit(f"report_screenshot: w2s {' '.join(args)} failed: {done.stderr.strip()[-2000:]}")
            ids[kind] = json.loads(done.stdout)["mlflow_run_id"]
    finally:
        w2s(home, "server", "stop")
    return ids


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render w2s report pages in headless Chromium; check and picture them.")
    parser.add_argument("runs", nargs="*", metavar="RUN_ID")
    parser.add_argument("--home", type=Path, help="the workspace (W2S_HOME) whose runs to report")
    parser.add_argument("--make", action="store_true", help="first record an experiment, a sweep and a study in a new workspace")
    args = parser.parse_args(argv)
    if browser.chromium_binary() is None:
        parser.error("chromium is not installed (Debian: apt-get install chromium)")
    if args.make == bool(args.runs) or (args.runs and not args.home):
        parser.error("give --home DIR and RUN_IDs, or --make")
    with tempfile.TemporaryDirectory(prefix="w2s-report-bench-") as scratch:
        home = args.home or Path(scratch) / "home"
        runs = list(make_runs(home).values()) if args.make else args.runs
        status = 0
        for run_id in runs:
            facts = report_picture(home, run_id)
            issues = problems(facts)
            status |= bool(issues)
            print(json.dumps({"run": run_id, "kind": facts["kind"], "sections": facts["sections"],
                              "images": [{k: v for k, v in i.items() if k != "src"} for i in facts["images"]],
                              "problems": issues, "picture": facts["picture"]}))
    return status


if __name__ == "__main__":
    sys.exit(main())
