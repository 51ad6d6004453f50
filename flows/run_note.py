"""The description of a parent run on its MLflow page: headline figures, table and plots.

The MLflow UI renders a run's ``mlflow.note.content`` tag as Markdown at the top of the
run's page ("Description"), images included. A relative ``get-artifact`` link is served
by whichever MLflow server shows the page, so the plots the run logged appear there
without being copied into the tag, whose value MLflow caps at 8000 characters.
"""

from __future__ import annotations

import math
from typing import Iterable
from urllib.parse import quote

NOTE_TAG = "mlflow.note.content"
MAX_NOTE = 8000  # MLflow's limit on a tag's value


def artifact_url(run_id: str, path: str) -> str:
    """Where the MLflow UI serves artifact ``path`` of ``run_id``, relative to its page."""
    return f"get-artifact?path={quote(path)}&run_uuid={run_id}"


def number(value) -> str:
    return "nan" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def experiment_note(run_id: str, metrics: dict, figures: Iterable[str], footer: str = "") -> str:
    """An experiment's headline: PGR and the three accuracies in one line (what the collapsed
    description shows), then a table of them, the figures and ``footer``."""
    m = metrics
    lines = [
        f"**PGR {number(m.get('pgr'))}** (accuracy), {number(m.get('pgr_auroc'))} (AUROC) · test accuracy "
        f"weak {number(m.get('acc_weak'))}, ceiling {number(m.get('acc_ceiling'))}, W2S {number(m.get('acc_w2s'))}",
        "",
        "| test accuracy | weak | ceiling | W2S |",
        "|---|---|---|---|",
        f"| all points | {number(m.get('acc_weak'))} | {number(m.get('acc_ceiling'))} | {number(m.get('acc_w2s'))} |",
    ]
    if "acc_hard_w2s" in m:
        lines.append(
            f"| hard-only | {number(m.get('acc_hard_weak'))} | {number(m.get('acc_hard_ceiling'))} | "
            f"{number(m.get('acc_hard_w2s'))} |"
        )
    return _assemble("\n".join(lines), run_id, figures, footer)


def table_note(run_id: str, table: str, figures: Iterable[str], footer: str = "") -> str:
    """A sweep's or study's own Markdown table (mean ± 95% CI per row), then its figures."""
    return _assemble(table.strip(), run_id, figures, footer)


def _assemble(body: str, run_id: str, figures: Iterable[str], footer: str) -> str:
    images = "\n\n".join(f"![{name}]({artifact_url(run_id, name)})" for name in figures)
    tail = "\n\n".join(part for part in (images, footer) if part)
    room = MAX_NOTE - len(tail) - 2
    if len(body) > room:  # a long table is cut at a line; the whole one is the run's artifact
        cut = "\n\n… (cut here: the whole table is among the run's artifacts)"
        body = body[: max(0, room - len(cut))].rsplit("\n", 1)[0] + cut
    return "\n\n".join(part for part in (body, tail) if part)
