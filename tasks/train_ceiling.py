"""Stage ``train_ceiling``: the strong model on ground truth of ``weak_train`` (the PGR ceiling)."""

from __future__ import annotations

from tasks.artifacts import SourceSplits, TrainedModel
from tasks.fitting import fit_on_ground_truth
from tasks.specs import BackboneConfig, ModelConfig
from tasks.stage import StageOutput, cached_stage


@cached_stage(TrainedModel)
def train_ceiling(
    out: StageOutput, ceiling: ModelConfig, seed: int, sources: list[SourceSplits], finetune: BackboneConfig | None = None
) -> None:
    """``finetune``: the backbone to fine-tune on the raw inputs, instead of ``ceiling`` on features."""
    fit_on_ground_truth(out, ceiling, seed, sources, finetune, features="x")
