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
