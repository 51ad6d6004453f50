"""Which layers of a backbone get LoRA adapters, by family.

Decoder families take Burns et al.'s choices (their code's per-model ``lora_modules``):
GPT-2 ``c_fc``, ``c_proj``, ``c_attn`` (its attention and MLP projections, GPT-2's own
``Conv1D`` layers, whose weights are stored transposed); GPT-NeoX / Pythia
``dense_h_to_4h``, ``dense_4h_to_h``, ``query_key_value``; Llama, Mistral and Qwen2 the
``up/down/gate/k/q/v_proj`` projections (no ``o_proj``). Other models get the query/value
pair of their attention when they have one (the LoRA paper's choice), else every Linear
layer inside an attention block.
"""

from __future__ import annotations

from torch import nn

GPT2_TARGETS = ("c_fc", "c_proj", "c_attn")
GPT_NEOX_TARGETS = ("dense_h_to_4h", "dense_4h_to_h", "query_key_value")
LLAMA_TARGETS = ("up_proj", "down_proj", "gate_proj", "k_proj", "q_proj", "v_proj")

FAMILY_TARGETS: dict[str, tuple[str, ...]] = {
    "gpt2": GPT2_TARGETS,
    "gpt_neox": GPT_NEOX_TARGETS,
    "llama": LLAMA_TARGETS,
    "mistral": LLAMA_TARGETS,
    "qwen2": LLAMA_TARGETS,
    "qwen3": LLAMA_TARGETS,
    "gemma": LLAMA_TARGETS,
    "gemma2": LLAMA_TARGETS,
}

# Query/value projection names: BERT / RoBERTa / MiniLM; ViT and decoder families (ViT too
# in transformers 5); DeBERTa; DistilBERT; T5.
_QUERY_VALUE_PAIRS = (
    ("query", "value"), ("q_proj", "v_proj"), ("query_proj", "value_proj"), ("q_lin", "v_lin"), ("q", "v"),
)


def _adaptable(module: nn.Module) -> bool:
    from transformers.pytorch_utils import Conv1D

    return isinstance(module, (nn.Linear, Conv1D))


def lora_targets(model: nn.Module) -> list[str]:
    """Names (leaf names, or full names for the attention fallback) of the layers that get
    adapters in ``model``, a ``transformers`` backbone."""
    layers = [name for name, m in model.named_modules() if _adaptable(m)]
    leaves = {name.rsplit(".", 1)[-1] for name in layers}
    family = FAMILY_TARGETS.get(getattr(getattr(model, "config", None), "model_type", ""))
    if family is not None:
        missing = [t for t in family if t not in leaves]
        if missing:
            raise ValueError(f"{type(model).__name__} lacks the LoRA target layers {missing} of its family")
        return list(family)
    for pair in _QUERY_VALUE_PAIRS:
        if set(pair) <= leaves:
            return list(pair)
    # Full names: leaf names such as ``dense`` recur outside attention.
    in_attention = [name for name in layers if "attn" in name.lower() or "attention" in name.lower()]
    if not in_attention:
        raise ValueError(f"no attention projections found for LoRA in {type(model).__name__}")
    return in_attention


def lora_config(model: nn.Module, rank: int, alpha: int, dropout: float):
    """A ``peft.LoraConfig`` for ``model``'s targets; GPT-2's ``Conv1D`` layers store their
    weight as (in, out), which peft must be told (``fan_in_fan_out``)."""
    from peft import LoraConfig
    from transformers.pytorch_utils import Conv1D

    targets = lora_targets(model)
    transposed = any(
        isinstance(m, Conv1D) and (name in targets or name.rsplit(".", 1)[-1] in targets) for name, m in model.named_modules()
    )
    return LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets, fan_in_fan_out=transposed)
