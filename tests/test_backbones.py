"""Pretrained backbones: the bundled MiniLM really encodes meaning; vision encoders by path."""

import numpy as np
import pytest

from models.backbone import ImageEncoder, TextEncoder
from models.errors import BackboneUnavailable


@pytest.fixture(scope="module")
def minilm():
    return TextEncoder("minilm")


def test_paraphrases_are_closer_than_unrelated_sentences(minilm):
    pairs = [
        ("A man is playing the guitar.", "Someone plays a guitar.", "The stock market fell sharply today."),
        ("How do I bake bread at home?", "What is a recipe for homemade bread?", "The train to Paris was late."),
        ("The child is sleeping in bed.", "A kid sleeps in his bed.", "Interest rates were raised by the bank."),
    ]
    texts = [t for triple in pairs for t in triple]
    e = minilm.encode(texts, batch_size=4)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, rtol=1e-5)  # normalised, as the model's card says
    for i in range(len(pairs)):
        a, para, other = e[3 * i : 3 * i + 3]
        assert a @ para > 0.5 > a @ other + 0.2


def test_encoding_order_and_batching_do_not_change_features(minilm):
    texts = ["short", "a much longer sentence about weak and strong models", "medium length text", "x"]
    one = minilm.encode(texts, batch_size=1)
    many = minilm.encode(texts[::-1], batch_size=3)[::-1]
    np.testing.assert_allclose(one, many, atol=1e-5)


def test_a_backbone_neither_local_nor_on_the_hub_is_named(tmp_path):
    with pytest.raises(BackboneUnavailable, match="'no-such/model-w2s'.*backbone.name"):
        TextEncoder("no-such/model-w2s")


def test_a_vision_encoder_by_path_encodes_grey_images(tiny_vit):
    path = tiny_vit
    images = np.random.default_rng(0).uniform(0, 16, size=(10, 8, 8)).astype(np.float32)
    encoder = ImageEncoder(str(path))
    e = encoder.encode(images, batch_size=4)
    assert e.shape == (10, 32) and np.isfinite(e).all()
    np.testing.assert_allclose(e, encoder.encode(images, batch_size=1), atol=1e-5)
    assert np.abs(e[0] - e[1]).max() > 1e-4  # different images, different features
