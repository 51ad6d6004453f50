"""What a side's stages do when it trains its backbone (``backbone.mode`` finetune or lora):
train the backbone itself, on the rows' raw text or pixels, instead of a head on frozen
features; and its soft labels of raw inputs afterwards."""

from __future__ import annotations

import numpy as np

from tasks.artifacts import SourceSplits, TrainedModel
from tasks.specs import BackboneConfig
from tasks.stage import StageOutput


def raw_inputs(sources: list[SourceSplits], split: str) -> list:
    """Each source's raw inputs of ``split`` (texts, or images), in the order of its rows."""
    return [source.raw_inputs(split) for source in sources]


def concat(parts: list) -> list | np.ndarray:
    return [t for p in parts for t in p] if isinstance(parts[0], list) else np.concatenate(parts)


def rows_of(inputs: list | np.ndarray, index: np.ndarray) -> list | np.ndarray:
    return [inputs[i] for i in index] if isinstance(inputs, list) else inputs[index]


def finetune_spec(backbone: BackboneConfig):
    """The model layer's spec for ``backbone``'s fine-tuning settings."""
    from models.finetune import FinetuneSpec

    return FinetuneSpec(
        epochs=backbone.finetune_epochs, lr=backbone.finetune_lr, batch_size=backbone.finetune_batch_size,
        grad_accum=backbone.grad_accum, weight_decay=backbone.weight_decay, lr_schedule=backbone.lr_schedule,
        dropout=backbone.train_dropout, max_length=backbone.max_length, truncation_side=backbone.truncation_side,
        drop_long=backbone.drop_long, lora=backbone.mode == "lora", lora_rank=backbone.lora_rank, pooling=backbone.pooling,
        grad_checkpointing=backbone.grad_checkpointing, precision=backbone.precision,
    )


def finetune_and_save(
    out: StageOutput, backbone: BackboneConfig, seed: int, inputs, targets: np.ndarray, val_inputs,
    val_targets: np.ndarray, test_inputs, loss_fn=None,
) -> np.ndarray:
    """Fine-tune on soft ``targets``, select the epoch on ``val_targets``; save the trainable
    weights and the test probabilities; return the test probabilities. (With ``drop_long``
    the texts that do not fit were dropped from the data before splitting: see ``embed``.)"""
    from models.backbone import to_uint8
    from models.finetune import encode_inputs, finetune_classifier, finetune_predict, save_finetuned

    spec = finetune_spec(backbone)

    # Images of any range become 8-bit, by the training images' range, as processors expect.
    lo, hi = (0.0, 0.0) if isinstance(inputs, list) else (float(inputs.min()), float(inputs.max()))

    def encode(x):
        if isinstance(x, list):
            return encode_inputs(backbone.name, texts=x, max_length=spec.max_length, truncation_side=spec.truncation_side)
        return encode_inputs(backbone.name, images=to_uint8(x, lo, hi))

    result = finetune_classifier(
        backbone.name, spec, encode(inputs), targets, encode(val_inputs), val_targets, seed, loss_fn=loss_fn,
    )
    probs = finetune_predict(result.model, encode(test_inputs))
    save_finetuned(result, TrainedModel.model_path(out))
    TrainedModel.write_fit(
        out, probs, result.history, result.best_epoch, n_train=len(targets), finetuned=True, precision=result.precision,
        input_range=None if isinstance(inputs, list) else [lo, hi],
    )
    return probs


def finetuned_probs(model: TrainedModel, *inputs) -> list[np.ndarray]:
    """A fine-tuned model's soft labels of each of ``inputs`` (raw inputs: texts, or images
    scaled to 8 bits by the range of the images it trained on, as it saw them); the model is
    loaded once for all of them."""
    from models.backbone import to_uint8
    from models.finetune import load_finetuned, predict_soft

    net = load_finetuned(model.model_dir)

    def probs(rows):
        if isinstance(rows, list):
            return predict_soft(net, texts=rows)
        lo, hi = model.info.input_range
        return predict_soft(net, images=to_uint8(rows, lo, hi))

    return [probs(rows) for rows in inputs]
