"""Stage ``embed``: a frozen pretrained backbone's features for every row of a real dataset, once.

The cache key holds the dataset's fingerprint, the backbone's (its weights' content for a
local folder) and the encoder settings, batch size included (padding to another batch's
longest text moves the features in their last bits); never the run's seed: every seed,
method and weak model reuses it.
"""

from __future__ import annotations

import time
from pathlib import Path

from models.backbone_names import resolve_backbone
from models.progress import meter
from tasks.artifacts import DatasetRows, Embedding
from tasks.errors import DataError
from tasks.manifest import hash_files
from tasks.specs import EncoderConfig
from tasks.stage import StageOutput, cached_stage


def backbone_fingerprint(name: str) -> str:
    """A local backbone's config and weights hashed by content; a hub name stands for itself.
    A first-``k``-layers cut (``NAME:k``) is part of it: another k, another model."""
    ref = resolve_backbone(name)
    cut = f":layers={ref.layers}" if ref.layers is not None else ""
    path = Path(ref.path)
    if not path.is_dir():
        return f"hub:{ref.path}{cut}"
    weights = (p for p in path.rglob("*") if p.is_file() and p.suffix in (".json", ".safetensors", ".bin", ".txt", ".model"))
    return hash_files(path, weights)[:32] + cut


@cached_stage(Embedding)
def embed(out: StageOutput, backbone: EncoderConfig, weights: str, data: DatasetRows) -> None:
    """``weights``: :func:`backbone_fingerprint` of ``backbone.name``."""
    from transformers.utils import logging as hf_logging

    from models.backbone import ImageEncoder, TextEncoder

    hf_logging.disable_progress_bar()
    _, _, inputs = data.rows()
    rows = data.info
    facts, too_long = {}, None
    if rows.input_kind == "text":
        encoder = TextEncoder(
            backbone.name, backbone.pooling, backbone.normalize, backbone.max_length,
            truncation_side=backbone.truncation_side,
        )
        # Texts that do not fit: cut on truncation_side, or (drop_long) dropped by make_splits
        # before the split, as Burns et al. drop texts of max_ctx tokens or more.
        counts = encoder.token_counts(inputs)
        too_long = counts >= backbone.max_length
        facts = dict(
            drop_long=backbone.drop_long, max_length=backbone.max_length, texts_cut=int((counts > backbone.max_length).sum()),
            texts_too_long=int(too_long.sum()), pooling=encoder.pooling,
        )
    elif rows.input_kind == "image":
        encoder = ImageEncoder(backbone.name, backbone.pooling, backbone.normalize)
        inputs = inputs.reshape(len(inputs), *rows.image_shape)
    else:
        raise DataError(f"backbone {backbone.name}: source '{rows.source}' has numeric features; a backbone encodes text or images")
    started = time.perf_counter()
    with meter(f"encode {rows.input_kind}s", len(inputs)) as encoded:
        features = encoder.encode(inputs, backbone.batch_size, progress=encoded.update)
    seconds = time.perf_counter() - started
    Embedding.write(
        out, features, too_long, source=rows.source, device=str(encoder.model.device),
        items_per_second=round(len(features) / max(seconds, 1e-9), 1), **facts,
    )

