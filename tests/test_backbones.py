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
    with pytest.raises(BackboneUnavailable, match="'no-such/model-w2s'.*strong.backbone=DIR"):
        TextEncoder("no-such/model-w2s")


def test_a_vision_encoder_by_path_encodes_grey_images(tiny_vit):
    path = tiny_vit
    images = np.random.default_rng(0).uniform(0, 16, size=(10, 8, 8)).astype(np.float32)
    encoder = ImageEncoder(str(path))
    e = encoder.encode(images, batch_size=4)
    assert e.shape == (10, 32) and np.isfinite(e).all()
    np.testing.assert_allclose(e, encoder.encode(images, batch_size=1), atol=1e-5)
    assert np.abs(e[0] - e[1]).max() > 1e-4  # different images, different features


# --- decoder LMs, pad tokens, first-k-layer cuts, truncation ---------------------------------

import torch  # noqa: E402
from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel  # noqa: E402

from models.backbone import (  # noqa: E402
    ensure_pad_token,
    inspect_backbone,
    last_token_index,
    layer_count,
    load_backbone,
    load_pretrained,
    load_tokenizer,
    pool,
)
from models.backbone_names import resolve_backbone  # noqa: E402
from models.finetune import encode_inputs, long_texts  # noqa: E402
from tasks.embed import backbone_fingerprint  # noqa: E402

# Texts of 2, 6 and 4 words; the first ends in "the", token id 0 (a real word, as "!" in GPT-2).
UNEVEN = ["bad the", "good ban bas bat ben the", "bat good ben bas"]


@pytest.fixture(params=["gpt2", "llama"])
def decoder_path(request, tiny_decoder):
    return str(tiny_decoder(request.param))


def test_a_tokenizer_without_pad_borrows_one_and_the_vocabulary_stays(decoder_path, minilm):
    raw = AutoTokenizer.from_pretrained(decoder_path)
    assert raw.pad_token is None
    tokenizer = load_tokenizer(decoder_path)
    assert tokenizer.pad_token == "<|endoftext|>" and len(tokenizer) == len(raw)
    assert load_backbone(decoder_path).get_input_embeddings().num_embeddings == len(raw)
    # An encoder's tokenizer without pad (and without end-of-text) borrows its unknown token.
    bert = load_pretrained(AutoTokenizer, "minilm", "tokenizer")
    n = len(bert)
    bert.pad_token = None
    assert ensure_pad_token(bert) == "[UNK]" and len(bert) == n
    assert bert(["a b c", "a"], padding=True)["attention_mask"][1] == [1, 1, 1, 0, 0]


@pytest.mark.parametrize("side", ["right", "left"])
def test_a_decoder_is_read_at_its_last_real_token_under_either_padding(decoder_path, side):
    encoder = TextEncoder(decoder_path, pooling="auto", normalize=False, padding_side=side)
    assert encoder.pooling == "last"
    batched = encoder.encode(UNEVEN, batch_size=3)
    tokenizer = load_tokenizer(decoder_path)
    model = AutoModel.from_pretrained(decoder_path).eval()
    with torch.no_grad():
        for text, features in zip(UNEVEN, batched):
            ids = torch.tensor([tokenizer(text)["input_ids"]])  # alone: no padding at all
            states = model(input_ids=ids).last_hidden_state[0]
            # Mean pooling, position -1 under right padding, or left-padded GPT-2 numbered
            # from its first pad would each give another vector.
            np.testing.assert_allclose(features, states[-1].numpy(), atol=1e-5)
            assert np.abs(features - states.mean(dim=0).numpy()).max() > 1e-3


def test_last_token_index_reads_the_mask_not_the_token_ids():
    mask = torch.tensor([[1, 1, 0, 0], [0, 0, 1, 1], [1, 1, 1, 1], [0, 1, 0, 0]])
    assert last_token_index(mask).tolist() == [1, 3, 3, 1]
    states = torch.arange(4 * 4 * 1, dtype=torch.float32).reshape(4, 4, 1)
    assert pool(states, mask, "last")[:, 0].tolist() == [1.0, 7.0, 11.0, 13.0]


def test_auto_pooling_follows_the_architecture(tiny_decoder, tiny_vit):
    assert inspect_backbone(str(tiny_decoder("gpt2"))).auto_pooling == "last"
    assert inspect_backbone(str(tiny_decoder("llama"))).auto_pooling == "last"
    assert inspect_backbone(str(tiny_decoder("qwen2"))).decoder_lm
    assert inspect_backbone(str(tiny_decoder("gpt_neox"))).decoder_lm
    minilm = inspect_backbone("minilm")
    assert (minilm.model_type, minilm.decoder_lm, minilm.auto_pooling, minilm.total_layers) == ("bert", False, "mean", 6)
    assert inspect_backbone(str(tiny_vit)).auto_pooling == "mean"


def test_minilm_cut_to_two_layers_is_the_full_models_first_two(minilm):
    cut, full = load_backbone("minilm:2").eval(), load_backbone("minilm").eval()
    assert layer_count(cut.config) == 2 and len(cut.encoder.layer) == 2
    size = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert size(full) - size(cut) == 4 * size(full.encoder.layer[0])  # four blocks fewer, the rest shared
    batch = load_tokenizer("minilm")(["a man plays the guitar", "the bank raised rates today"], padding=True, return_tensors="pt")
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    with torch.no_grad():
        ours = cut(**inputs).last_hidden_state
        reference = full(**inputs, output_hidden_states=True).hidden_states
    np.testing.assert_allclose(ours.numpy(), reference[2].numpy(), atol=1e-5)
    assert np.abs(ours.numpy() - reference[3].numpy()).max() > 1e-2
    # As a frozen encoder it gives other features than the full model.
    e2 = TextEncoder("minilm:2").encode(["a man plays the guitar"])
    assert e2.shape == (1, 384) and np.abs(e2 - minilm.encode(["a man plays the guitar"])).max() > 1e-2


@pytest.mark.parametrize("kind", ["gpt2", "llama", "qwen2"])
def test_a_decoder_cut_keeps_its_first_layers_and_its_final_norm(tiny_decoder, kind):
    path = str(tiny_decoder(kind, layers=3))
    cut, full = load_backbone(f"{path}:1").eval(), AutoModel.from_pretrained(path).eval()
    assert layer_count(cut.config) == 1
    if kind == "qwen2":  # its per-layer attention kinds are cut with the layers
        assert len(cut.config.layer_types) == 1
    ids = torch.tensor([[3, 7, 0, 12, 5]])
    with torch.no_grad():
        states = full(input_ids=ids, output_hidden_states=True).hidden_states
        final_norm = full.ln_f if kind == "gpt2" else full.norm
        np.testing.assert_allclose(cut(input_ids=ids).last_hidden_state.numpy(), final_norm(states[1]).numpy(), atol=1e-5)


def test_a_cut_beyond_the_models_layers_is_refused_in_one_line(tiny_gpt2):
    for name, message in (("minilm:7", "6 layers, fewer than the 7"), (f"{tiny_gpt2}:3", "2 layers, fewer than the 3"),
                          ("minilm:0", "keeps no layer")):
        with pytest.raises(BackboneUnavailable, match=message) as caught:
            inspect_backbone(name)
        assert "\n" not in str(caught.value)
    with pytest.raises(BackboneUnavailable, match="fewer than the 7"):
        TextEncoder("minilm:7")
    assert resolve_backbone("minilm:2").layers == 2 and resolve_backbone("org/model").layers is None


def test_the_cut_is_part_of_the_backbones_fingerprint():
    full, two, one = (backbone_fingerprint(n) for n in ("minilm", "minilm:2", "minilm:1"))
    assert len({full, two, one}) == 3 and two == backbone_fingerprint("minilm:2")
    assert backbone_fingerprint("gpt2:6") == "hub:gpt2:layers=6" and backbone_fingerprint("gpt2") == "hub:gpt2"


def test_truncation_keeps_the_chosen_end(tiny_gpt2):
    text = "ban bas bat ben bes good"
    ids = load_tokenizer(str(tiny_gpt2))(text)["input_ids"]
    right = encode_inputs(tiny_gpt2, texts=[text], max_length=3)["input_ids"][0].tolist()
    left = encode_inputs(tiny_gpt2, texts=[text], max_length=3, truncation_side="left")["input_ids"][0].tolist()
    assert right == ids[:3] and left == ids[-3:]
    # Burns et al.'s rule for dropping instead: max_length tokens or more do not fit.
    assert long_texts(tiny_gpt2, ["ban", "ban bas bat", "ban bas bat ben"], max_length=3).tolist() == [False, True, True]


def test_an_encoder_built_from_a_config_is_read_with_mean_pooling(tmp_path):
    BertModel(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32)).save_pretrained(tmp_path)
    load_tokenizer("minilm").save_pretrained(tmp_path)
    encoder = TextEncoder(str(tmp_path), normalize=False)
    assert encoder.pooling == "mean" and not encoder.mask_positions


def test_decoder_lms_are_told_from_encoders_by_their_config():
    from transformers import AutoConfig

    from models.backbone import is_decoder_lm, resolve_pooling

    decoders = ("gpt2", "gpt_neox", "llama", "mistral", "qwen2")
    encoders = ("bert", "roberta", "deberta-v2", "vit", "dinov2", "t5")  # t5: encoder-decoder, read by its encoder
    for kind in decoders + encoders:
        config = AutoConfig.for_model(kind)
        assert is_decoder_lm(config) == (kind in decoders), kind
        assert resolve_pooling("auto", config) == ("last" if kind in decoders else "mean")
    with pytest.raises(ValueError, match="unknown pooling"):
        resolve_pooling("max", AutoConfig.for_model("bert"))


def test_encoder_families_get_adapters_on_their_query_and_value():
    from transformers import DebertaV2Config, DebertaV2Model, RobertaConfig, RobertaModel

    from models.lora import lora_targets

    shape = dict(vocab_size=60, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    assert lora_targets(RobertaModel(RobertaConfig(**shape))) == ["query", "value"]
    assert lora_targets(DebertaV2Model(DebertaV2Config(**shape))) == ["query_proj", "value_proj"]


def test_an_encoder_decoder_model_is_read_through_its_encoder(tmp_path):
    from transformers import T5Config, T5Model

    T5Model(T5Config(vocab_size=60, d_model=32, d_kv=8, d_ff=32, num_layers=2, num_heads=2)).save_pretrained(tmp_path)
    encoder = load_backbone(f"{tmp_path}:1")
    assert len(encoder.block) == 1
    states = encoder(input_ids=torch.tensor([[3, 4, 5]]), attention_mask=torch.ones(1, 3, dtype=torch.long))
    assert states.last_hidden_state.shape == (1, 3, 32)
