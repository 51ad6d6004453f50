"""Figures of the studies: means over seeds as lines, 95% CIs as bands."""

from __future__ import annotations

from pathlib import Path


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def band(ax, x, rows: list[dict], key: str, label: str, **style) -> None:
    """``rows[i][key]`` against ``x`` with its ``key_ci`` band."""
    import numpy as np

    mean = np.array([r[key] for r in rows], dtype=float)
    ci = np.nan_to_num(np.array([r.get(f"{key}_ci", np.nan) for r in rows], dtype=float))
    (line,) = ax.plot(x, mean, label=label, **style)
    ax.fill_between(x, mean - ci, mean + ci, color=line.get_color(), alpha=0.15, lw=0)


def save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    pyplot().close(fig)
