"""One workspace per test session, and Prefect pointed at it before Prefect is imported."""

import os
import tempfile
from pathlib import Path

import pytest

_SESSION_HOME = Path(tempfile.mkdtemp(prefix="w2s-tests-"))
os.environ["W2S_HOME"] = str(_SESSION_HOME / "home")
os.environ.pop("MLFLOW_TRACKING_URI", None)
os.environ.pop("PREFECT_API_URL", None)
os.environ["PREFECT_HOME"] = str(_SESSION_HOME / "prefect")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
# Nothing in the tests may come from the hub; offline mode fails at once instead of retrying.
os.environ["HF_HUB_OFFLINE"] = "1"

SMALL_CONFIG = Path(__file__).parent / "small.yaml"


@pytest.fixture(scope="session")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness():
        yield


@pytest.fixture
def small_config_path() -> Path:
    return SMALL_CONFIG


@pytest.fixture(scope="session")
def tiny_vit(tmp_path_factory) -> Path:
    """A randomly initialised ViT and its image processor, saved as a hub download would be
    (no vision model can be downloaded here)."""
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    path = tmp_path_factory.mktemp("tiny-vit")
    config = ViTConfig(
        image_size=16, patch_size=8, num_channels=3, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=64,
    )
    ViTModel(config).save_pretrained(path)
    ViTImageProcessor(size={"height": 16, "width": 16}).save_pretrained(path)
    return path


# Words of the tiny decoders' vocabulary: "the" has id 0, as "!" has in GPT-2 (padding found
# by ``token_id != 0`` would take it for a pad); filler syllables; two sentiment words.
DECODER_WORDS = ["the"] + [a + v + b for a in "bdfgklmnprst" for v in "aeiou" for b in "nst"][:190] + ["good", "bad"]


@pytest.fixture(scope="session")
def tiny_decoder(tmp_path_factory):
    """``make(kind, words=DECODER_WORDS, layers=2)``: a randomly initialised decoder-only LM
    (``gpt2``, ``llama``, ``qwen2`` or ``gpt_neox``) saved with a word-level tokenizer that,
    like GPT-2's and Llama's, has no pad token (no tokenizer can be downloaded here). A
    ``qwen2`` folder gets none: transformers reads any tokenizer there as Qwen2's byte-level
    BPE, so its tests feed token ids."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from transformers import (
        GPT2Config, GPT2Model, GPTNeoXConfig, GPTNeoXModel, LlamaConfig, LlamaModel, PreTrainedTokenizerFast,
        Qwen2Config, Qwen2Model,
    )

    import torch

    made = {}

    def make(kind: str, words: tuple[str, ...] | list[str] = tuple(DECODER_WORDS), layers: int = 2) -> Path:
        key = (kind, tuple(words), layers)
        if key in made:
            return made[key]
        path = tmp_path_factory.mktemp(f"tiny-{kind}")
        vocab = {w: i for i, w in enumerate(dict.fromkeys([*words, "<unk>", "<|endoftext|>"]))}
        if kind != "qwen2":
            core = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
            core.pre_tokenizer = Whitespace()
            PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", eos_token="<|endoftext|>").save_pretrained(path)
        n, eos = len(vocab), vocab["<|endoftext|>"]
        shape = dict(vocab_size=n, hidden_size=32, num_hidden_layers=layers, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64, bos_token_id=eos, eos_token_id=eos)
        torch.manual_seed(0)
        if kind == "gpt2":
            model = GPT2Model(GPT2Config(vocab_size=n, n_embd=32, n_layer=layers, n_head=2, n_positions=64,
                                         bos_token_id=eos, eos_token_id=eos))
        elif kind == "llama":
            model = LlamaModel(LlamaConfig(**shape, num_key_value_heads=1))
        elif kind == "qwen2":
            model = Qwen2Model(Qwen2Config(**shape, num_key_value_heads=1))
        elif kind == "gpt_neox":
            model = GPTNeoXModel(GPTNeoXConfig(**shape))
        else:
            raise ValueError(kind)
        model.save_pretrained(path)
        made[key] = path
        return path

    return make


@pytest.fixture(scope="session")
def tiny_gpt2(tiny_decoder) -> Path:
    return tiny_decoder("gpt2")


@pytest.fixture(scope="session")
def tiny_llama(tiny_decoder) -> Path:
    return tiny_decoder("llama")


@pytest.fixture(scope="session")
def tiny_qwen2(tiny_decoder) -> Path:
    return tiny_decoder("qwen2")
