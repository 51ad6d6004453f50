"""Stage ``train_weak``: the weak model, trained on ground truth of ``weak_train``: a head on
the weak view (a hand-made view of the data, or a weak backbone's frozen features), or the
weak side's backbone itself, fine-tuned on the rows' raw text or pixels."""

from __future__ import annotations

from tasks.artifacts import SourceSplits, TrainedModel
from tasks.fitting import fit_on_ground_truth
from tasks.specs import BackboneConfig, ModelConfig
from tasks.stage import StageOutput, cached_stage


@cached_stage(TrainedModel)
def train_weak(
    out: StageOutput, weak: ModelConfig, seed: int, sources: list[SourceSplits], finetune: BackboneConfig | None = None
) -> None:
    """``finetune``: the weak backbone to fine-tune, instead of ``weak`` (a head) on the weak view."""
    fit_on_ground_truth(out, weak, seed, sources, finetune, features="x_weak")
