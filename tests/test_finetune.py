"""Fine-tuning through models.finetune on tiny randomly initialised BERT and ViT backbones
saved locally: no hub, no pretrained weights, a few seconds each."""

import numpy as np
import pytest
import torch
from transformers import AutoModel, BertConfig, BertModel, BertTokenizer

from models.finetune import (
    BackboneClassifier,
    FinetuneSpec,
    encode_inputs,
    finetune_classifier,
    finetune_predict,
    load_finetuned,
    save_finetuned,
)

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# Filler words that say nothing about the label: consonant-vowel-consonant syllables.
FILLER = [a + v + b for a in "bdfgklmnprst" for v in "aeiou" for b in "nst"][:190]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Models this small gain nothing from a second intra-op thread, and on a busy 2-core
    machine its spin-waiting made these tests 50 times slower (25 s instead of 0.4 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def bert_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-bert")
    vocab = path / "vocab.txt"
    vocab.write_text("\n".join(SPECIALS + FILLER + ["good", "bad"]) + "\n")
    # transformers 5 takes the vocabulary as ``vocab`` (a path or a dict); the old
    # ``vocab_file`` keyword is silently ignored and leaves only the special tokens.
    BertTokenizer(vocab=str(vocab)).save_pretrained(path)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(SPECIALS) + len(FILLER) + 2, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=64, max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def vit_path(tiny_vit):
    return tiny_vit


def sentiment_texts(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Sentences of filler words with one "good" (class 1) or "bad" (class 0) among them."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    texts = []
    for label in labels:
        # A few filler words, each in many sentences of both classes: nothing to memorise.
        words = list(rng.choice(FILLER[:24], size=rng.integers(4, 9)))
        words.insert(rng.integers(0, len(words) + 1), "good" if label else "bad")
        texts.append(" ".join(words))
    return texts, labels


def soft(labels: np.ndarray, confidence: float = 0.9) -> np.ndarray:
    return np.where(np.eye(2, dtype=np.float32)[labels] == 1, confidence, 1 - confidence).astype(np.float32)


@pytest.fixture(scope="module")
def text_task(bert_path):
    splits = [sentiment_texts(n, seed) for n, seed in ((64, 1), (32, 2), (64, 3))]
    return [(encode_inputs(bert_path, texts=texts, max_length=32), labels) for texts, labels in splits]


def test_encode_inputs_pads_to_longest_and_caps(bert_path):
    texts = ["good", "bad " + " ".join(FILLER[:10])]
    enc = encode_inputs(bert_path, texts=texts)
    assert enc["input_ids"].dtype == np.int64 and enc["attention_mask"].dtype == np.int64
    assert enc["input_ids"].shape == (2, 13)  # [CLS] + 11 words + [SEP]
    assert enc["attention_mask"].sum(axis=1).tolist() == [3, 13]
    assert encode_inputs(bert_path, texts=texts, max_length=5)["input_ids"].shape == (2, 5)
    with pytest.raises(ValueError):
        encode_inputs(bert_path)


@pytest.mark.parametrize("lora", [False, True])
def test_text_finetuning_learns_and_round_trips(bert_path, text_task, tmp_path, lora):
    (x, y), (x_val, y_val), (x_test, y_test) = text_task
    spec = FinetuneSpec(epochs=12, lr=1e-2, batch_size=16, lora=lora, lora_rank=4, lora_alpha=8, patience=12)
    result = finetune_classifier(bert_path, spec, x, soft(y), x_val, soft(y_val), seed=0)

    assert len(result.history) == 12
    assert result.history[-1]["train_loss"] < 0.7 * result.history[0]["train_loss"]
    assert 0 <= result.best_epoch < 12
    probs = finetune_predict(result.model, x_test)
    assert probs.shape == (64, 2)
    assert (probs.argmax(1) == y_test).mean() > 0.8

    save_finetuned(result, tmp_path / "ckpt")
    reloaded = load_finetuned(tmp_path / "ckpt", bert_path)
    np.testing.assert_allclose(finetune_predict(reloaded, x_test), probs, rtol=0, atol=1e-6)

    if lora:
        model = result.model
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        total = sum(p.numel() for p in model.parameters())
        assert trainable < 0.1 * total
        assert all(name.startswith("head.") or "lora_" in name for name, _ in model.trainable_state().items())
        # Adapters wrap each targeted layer, whose own weight moves to ``base_layer``.
        original = AutoModel.from_pretrained(bert_path).state_dict()
        tuned = {
            name.replace(".base_layer.", "."): value
            for name, value in model.backbone.state_dict().items()
            if "lora_" not in name
        }
        assert tuned.keys() == original.keys()
        for name, value in original.items():
            assert torch.equal(tuned[name], value), name
        assert len(list((tmp_path / "ckpt").iterdir())) == 2


def test_vision_finetuning_separates_bright_from_dark(vit_path):
    rng = np.random.default_rng(0)

    def images(n):
        labels = np.arange(n) % 2
        low = np.where(labels == 1, 140, 0)[:, None, None]
        # Grayscale (n, H, W) uint8: the 3-channel processor gets the channel repeated.
        return (low + rng.integers(0, 116, size=(n, 16, 16))).astype(np.uint8), labels

    (train, y), (val, y_val), (test, y_test) = images(64), images(32), images(64)
    encode = lambda batch: encode_inputs(vit_path, images=batch)  # noqa: E731
    x = encode(train)
    assert x["pixel_values"].shape == (64, 3, 16, 16) and x["pixel_values"].dtype == np.float32
    spec = FinetuneSpec(epochs=6, lr=3e-3, batch_size=16, pooling="cls")
    result = finetune_classifier(vit_path, spec, x, soft(y), encode(val), soft(y_val), seed=0)
    probs = finetune_predict(result.model, encode(test))
    assert (probs.argmax(1) == y_test).mean() > 0.8

    # Float images in [0, 1] are the same pictures as their uint8 versions.
    as_float = encode_inputs(vit_path, images=train.astype(np.float32) / 255)["pixel_values"]
    np.testing.assert_allclose(as_float, x["pixel_values"], atol=1e-5)


def test_loss_fn_sees_step_and_total_steps(bert_path, text_task):
    (x, y), _, _ = text_task
    seen = []

    def recording_loss(logits, target, weights, step, total_steps):
        seen.append((step, total_steps))
        return torch.nn.functional.cross_entropy(logits, target)

    spec = FinetuneSpec(epochs=2, lr=1e-3, batch_size=32)
    result = finetune_classifier(bert_path, spec, x, soft(y), None, None, seed=0, loss_fn=recording_loss)
    assert seen == [(0, 4), (1, 4), (2, 4), (3, 4)]
    assert result.best_epoch == -1
    assert [h["epoch"] for h in result.history] == [0, 1] and "val_loss" not in result.history[0]


def test_lora_targets_attention_projections(bert_path):
    model = BackboneClassifier(bert_path, 2, FinetuneSpec(lora=True, lora_rank=2))
    adapted = {name.split(".lora_")[0] for name, _ in model.trainable_state().items() if "lora_" in name}
    assert adapted == {f"backbone.encoder.layer.{i}.attention.self.{p}" for i in range(2) for p in ("query", "value")}


# --- decoder LMs, LoRA per family, GPU settings ---------------------------------------------

from transformers import GPTNeoXConfig, GPTNeoXModel, Qwen2Config, Qwen2Model  # noqa: E402
from transformers.pytorch_utils import Conv1D  # noqa: E402

from models.backbone import load_backbone  # noqa: E402
from models.finetune import FinetuneModule, optimizer_steps, predict_soft, resolve_precision  # noqa: E402
from models.lora import lora_targets  # noqa: E402


def decoder_task(path, n_train=64):
    splits = [sentiment_texts(n, seed) for n, seed in ((n_train, 1), (32, 2), (32, 3))]
    return [(encode_inputs(path, texts=texts, max_length=16), labels, texts) for texts, labels in splits]


@pytest.mark.parametrize("kind,lora", [("gpt2", False), ("gpt2", True), ("llama", False), ("llama", True)])
def test_a_decoder_lm_fine_tunes_one_epoch_predicts_and_round_trips(tiny_decoder, tmp_path, kind, lora):
    path = str(tiny_decoder(kind))
    (x, y, _), (x_val, y_val, _), (x_test, _, test_texts) = decoder_task(path)
    spec = FinetuneSpec(epochs=1, lr=3e-3, batch_size=16, lora=lora, lora_rank=4, patience=1, max_length=16)
    torch.manual_seed(0)
    before = finetune_predict(BackboneClassifier(path, 2, spec), x_test)
    result = finetune_classifier(path, spec, x, soft(y), x_val, soft(y_val), seed=0)
    assert result.model.pooling == "last" and result.precision == "32-true"
    after = finetune_predict(result.model, x_test)
    assert after.shape == (32, 2) and np.abs(after - before).max() > 1e-3
    # Raw texts get the same soft predictions, encoded as in training.
    np.testing.assert_allclose(predict_soft(result.model, texts=test_texts), after, atol=1e-6)
    save_finetuned(result, tmp_path / "ckpt")
    np.testing.assert_allclose(finetune_predict(load_finetuned(tmp_path / "ckpt"), x_test), after, atol=1e-6)
    if lora:
        assert all(name.startswith("head.") or "lora_" in name for name in result.model.trainable_state())


def test_a_cut_decoder_fine_tunes_and_reloads_by_its_name(tiny_gpt2, tmp_path):
    name = f"{tiny_gpt2}:1"
    (x, y, _), _, (x_test, _, _) = decoder_task(str(tiny_gpt2), n_train=32)
    result = finetune_classifier(name, FinetuneSpec(epochs=1, lr=3e-3, batch_size=16), x, soft(y), None, None, seed=0)
    assert len(result.model.backbone.h) == 1
    save_finetuned(result, tmp_path / "ckpt")
    reloaded = load_finetuned(tmp_path / "ckpt")
    assert reloaded.backbone_name == name
    np.testing.assert_allclose(finetune_predict(reloaded, x_test), finetune_predict(result.model, x_test), atol=1e-6)


def _adapted(model) -> set[str]:
    return {name.split(".lora_")[0].rsplit(".", 1)[-1] for name, _ in model.named_parameters() if "lora_" in name}


def test_lora_targets_follow_burns_et_al_per_family(tiny_decoder):
    expect = {
        "gpt2": {"c_fc", "c_proj", "c_attn"},
        "llama": {"up_proj", "down_proj", "gate_proj", "k_proj", "q_proj", "v_proj"},
    }
    for kind, targets in expect.items():
        model = BackboneClassifier(str(tiny_decoder(kind)), 2, FinetuneSpec(lora=True, lora_rank=2))
        assert _adapted(model) == targets
        assert not any(p.requires_grad for n, p in model.backbone.named_parameters() if "lora_" not in n)
    # GPT-2's Conv1D layers hold (in, out) weights: the adapters are told so.
    gpt2 = BackboneClassifier(str(tiny_decoder("gpt2")), 2, FinetuneSpec(lora=True, lora_rank=2))
    adapted_conv = [m for m in gpt2.modules() if hasattr(m, "base_layer") and isinstance(m.base_layer, Conv1D)]
    assert adapted_conv and all(m.fan_in_fan_out for m in adapted_conv)
    shape = dict(vocab_size=50, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    assert set(lora_targets(GPTNeoXModel(GPTNeoXConfig(**shape)))) == {"dense_h_to_4h", "dense_4h_to_h", "query_key_value"}
    assert set(lora_targets(Qwen2Model(Qwen2Config(**shape, num_key_value_heads=1)))) == expect["llama"]


def test_gradient_accumulation_steps_the_optimiser_once_per_group(tiny_gpt2, bert_path, text_task):
    (x, y), _, _ = text_task
    seen = []

    def recording_loss(logits, target, weights, step, total_steps):
        seen.append((step, total_steps))
        return torch.nn.functional.cross_entropy(logits, target)

    spec = FinetuneSpec(epochs=2, lr=1e-3, batch_size=16, grad_accum=2)
    finetune_classifier(bert_path, spec, x, soft(y), None, None, seed=0, loss_fn=recording_loss)
    assert optimizer_steps(64, spec) == 4
    assert seen == [(0, 4), (0, 4), (1, 4), (1, 4), (2, 4), (2, 4), (3, 4), (3, 4)]
    # Two batches of 16 summed into one step are one batch of 32 (dropout off, same points).
    (xg, yg, _), _, _ = decoder_task(str(tiny_gpt2))
    one = FinetuneSpec(epochs=1, lr=1e-2, batch_size=32, dropout=False)
    two = FinetuneSpec(epochs=1, lr=1e-2, batch_size=16, grad_accum=2, dropout=False)
    a = finetune_classifier(str(tiny_gpt2), one, xg, soft(yg), None, None, seed=0).model.trainable_state()
    b = finetune_classifier(str(tiny_gpt2), two, xg, soft(yg), None, None, seed=0).model.trainable_state()
    initial = BackboneClassifier(str(tiny_gpt2), 2, one).trainable_state()
    # Adam moves a weight by about lr whatever its gradient's size, so rounding in the summed
    # gradients shows in the last digits only; stepping per batch would move them by ~lr.
    for name in (n for n in a if n.startswith("backbone.")):
        moved = (a[name] - initial[name]).abs().max()
        assert moved > 5e-3 and (a[name] - b[name]).abs().max() < 0.02 * moved, name


def test_gradient_checkpointing_gives_the_same_training_with_lora(tiny_gpt2):
    (x, y, _), _, _ = decoder_task(str(tiny_gpt2), n_train=32)
    states = []
    for checkpointing in (False, True):
        spec = FinetuneSpec(epochs=1, lr=1e-2, batch_size=16, lora=True, lora_rank=2, dropout=False,
                            grad_checkpointing=checkpointing)
        model = finetune_classifier(str(tiny_gpt2), spec, x, soft(y), None, None, seed=0).model
        assert any(getattr(m, "gradient_checkpointing", False) for m in model.backbone.modules()) == checkpointing
        states.append(model.trainable_state())
    lora_b = [n for n in states[0] if "lora_B" in n]
    assert lora_b and all(states[1][n].abs().max() > 0 for n in lora_b)  # the adapters inside checkpointed blocks trained
    for name in states[0]:
        torch.testing.assert_close(states[0][name], states[1][name], atol=1e-5, rtol=1e-4)


def test_dropout_off_makes_training_mode_deterministic(tiny_gpt2):
    (x, _, _), _, _ = decoder_task(str(tiny_gpt2), n_train=8)
    batch = {k: torch.as_tensor(v) for k, v in x.items()}
    on, off = (BackboneClassifier(str(tiny_gpt2), 2, FinetuneSpec(dropout=d)).train() for d in (True, False))
    assert not torch.equal(on(batch), on(batch))
    torch.testing.assert_close(off(batch), off(batch))


def test_precision_is_bf16_on_a_gpu_that_has_it_and_fp32_on_cpu(tiny_gpt2):
    if not torch.cuda.is_available():
        assert resolve_precision("auto") == "32-true" and resolve_precision("auto", "cpu") == "32-true"
    assert resolve_precision("bf16-mixed") == "bf16-mixed"
    # The bf16 autocast path runs on this CPU too (slowly; the GPU is where it pays).
    (x, y, _), _, (x_test, _, _) = decoder_task(str(tiny_gpt2), n_train=16)
    spec = FinetuneSpec(epochs=1, lr=1e-3, batch_size=16, precision="bf16-mixed", accelerator="cpu")
    result = finetune_classifier(str(tiny_gpt2), spec, x, soft(y), x, soft(y), seed=0)
    assert result.precision == "bf16-mixed" and np.isfinite(result.history[0]["val_loss"])
    assert np.isfinite(finetune_predict(result.model, x_test, device="cpu")).all()


def test_the_cosine_schedule_anneals_to_zero_over_the_optimiser_steps(bert_path):
    net = BackboneClassifier(bert_path, 2, FinetuneSpec())
    config = FinetuneModule(net, lr=1e-3, total_steps=10, lr_schedule="cosine").configure_optimizers()
    optimizer, schedule = config["optimizer"], config["lr_scheduler"]["scheduler"]
    assert config["lr_scheduler"]["interval"] == "step"
    lrs = []
    for _ in range(10):
        optimizer.step()
        schedule.step()
        lrs.append(optimizer.param_groups[0]["lr"])
    assert lrs[4] == pytest.approx(5e-4) and lrs[-1] == pytest.approx(0.0, abs=1e-12)
    assert isinstance(FinetuneModule(net, lr=1e-3).configure_optimizers(), torch.optim.AdamW)


def test_bad_spec_values_are_refused():
    for bad in ({"precision": "fp8"}, {"lr_schedule": "linear"}, {"grad_accum": 0}):
        with pytest.raises(ValueError):
            FinetuneSpec(**bad)
    with pytest.raises(ValueError, match="pooling"):
        BackboneClassifier("minilm:1", 2, FinetuneSpec(pooling="max"))


def test_the_backbone_of_a_cut_loads_only_its_layers(tiny_gpt2):
    assert len(load_backbone(f"{tiny_gpt2}:1").h) == 1
