"""One workspace and one Prefect server per test session, set up before Prefect is imported.

The session's server is the workspace's own local server (flows/server.py), started in
the background as the tests are collected. Every in-process flow and every ``w2s``
subprocess reaches it through ``PREFECT_API_URL``, instead of each starting Prefect's
temporary API (~9 s apiece). Tests of the local server itself and of the temporary API
(``--no-server``) use workspaces of their own without that variable (cli_helpers.py).
"""

import os
import tempfile
from pathlib import Path

import pytest

_SESSION_HOME = Path(tempfile.mkdtemp(prefix="w2s-tests-"))
os.environ["W2S_HOME"] = str(_SESSION_HOME / "home")
os.environ.pop("MLFLOW_TRACKING_URI", None)
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("W2S_SERVER", None)
os.environ["PREFECT_HOME"] = str(_SESSION_HOME / "prefect")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
# A server a test starts and forgets stops itself soon after that test's process ends.
os.environ["W2S_SERVER_IDLE_MINUTES"] = "2"
# Nothing in the tests may come from the hub; offline mode fails at once instead of retrying.
os.environ["HF_HUB_OFFLINE"] = "1"

from flows.server import ensure_server, stop_server  # noqa: E402  (after the environment above)

_SERVER = ensure_server(Path(os.environ["W2S_HOME"]))
os.environ["PREFECT_API_URL"] = _SERVER.api_url

SMALL_CONFIG = Path(__file__).parent / "small.yaml"


def pytest_sessionfinish(session, exitstatus):
    """Stop the session's server; any other local server a test started and left running
    fails the session (it is stopped too): the product must never leave one behind."""
    stop_server(Path(os.environ["W2S_HOME"]))
    factory = getattr(session.config, "_tmp_path_factory", None)  # where tmp_path folders live
    roots = [str(_SESSION_HOME), *([str(factory.getbasetemp())] if factory else [])]
    left = [home for home in _local_servers() if home.startswith(tuple(roots))]
    for home in left:
        stop_server(Path(home))
    if left:
        print(f"\nlocal Prefect servers left running by the tests (now stopped): {left}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _local_servers() -> list[str]:
    """The workspaces whose local server runs on this machine (read off /proc)."""
    homes = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().decode().split("\0") if proc.name.isdigit() else []
        except OSError:
            continue
        if "flows.server" in argv and "--home" in argv:
            homes.append(argv[argv.index("--home") + 1])
    return homes


@pytest.fixture(scope="session", autouse=True)
def prefect_server():
    """The session's server answers before the first test (it started while tests were collected)."""
    _SERVER.wait_ready()
    return _SERVER


@pytest.fixture(scope="session")
def prefect_harness(prefect_server):
    """What flow tests ask for: the session's Prefect API (kept under this name)."""
    return prefect_server


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


# A few rows of every benchmark task in its hub columns (models/nlp_tasks.py), for the
# formatter tests and for the local copies that stand in for the hub (nothing can be
# downloaded here). Tasks whose label is a column get both labels.
HUB_ROWS = {
    "amazon_polarity": [
        {"label": 1, "title": "Great kettle", "content": "Boils water fast and looks good."},
        {"label": 0, "title": "Broke in a week", "content": "The handle snapped off."},
    ],
    "sciq": [{
        "question": "What gas do plants absorb from the air?", "distractor3": "argon", "distractor1": "oxygen",
        "distractor2": "helium", "correct_answer": "carbon dioxide", "support": "Plants take in carbon dioxide.",
    }],
    "anthropic_hh": [{
        "chosen": "\n\nHuman: How do I boil an egg?\n\nAssistant: Put it in boiling water for nine minutes.",
        "rejected": "\n\nHuman: How do I boil an egg?\n\nAssistant: Figure it out yourself.",
    }],
    "cosmos_qa": [
        {"id": "c1", "context": "Tom missed the bus and walked to work.", "question": "Why was Tom late?",
         "answer0": "He overslept.", "answer1": "He took a taxi.", "answer2": "He missed the bus.",
         "answer3": "He was sick.", "label": 2},
        {"id": "c2", "context": "The shop was closed on Sunday.", "question": "What did Ann buy?",
         "answer0": "Bread.", "answer1": "Milk.", "answer2": "Eggs.", "answer3": "None of the above choices .",
         "label": 3},
    ],
    "boolq": [
        {"question": "is the sun a star", "answer": True, "passage": "The Sun is the star at the centre of the Solar System."},
        {"question": "is the moon a planet", "answer": False, "passage": "The Moon is Earth's only natural satellite."},
    ],
    "anli-r2": [
        {"uid": "a1", "premise": "A dog runs in the park.", "hypothesis": "An animal is outside.", "label": 0, "reason": ""},
        {"uid": "a2", "premise": "A dog runs in the park.", "hypothesis": "The dog is asleep.", "label": 2, "reason": ""},
        {"uid": "a3", "premise": "A dog runs in the park.", "hypothesis": "The dog is happy.", "label": 1, "reason": ""},
    ],
    "cola": [
        {"sentence": "The book was read by Mary.", "label": 1, "idx": 0},
        {"sentence": "Book the Mary read was by.", "label": 0, "idx": 1},
    ],
    "dream": [{
        "id": 0, "dialogue_id": "5-510", "dialogue": ["M: Hi, I'm Bob.", "W: Hello, Bob."],
        "question": "Who spoke first?", "choice": ["The man.", "The woman.", "Nobody."], "answer": "The man.",
    }],
    "ethics-deontology": [
        {"label": 1, "scenario": "Aren't you supposed to mow the lawn?", "excuse": "No, I mowed it yesterday."},
        {"label": 0, "scenario": "Aren't you supposed to mow the lawn?", "excuse": "No, the lawn is green."},
    ],
    "ethics-justice": [
        {"label": 1, "scenario": "I deserve a raise because I doubled our sales."},
        {"label": 0, "scenario": "I deserve a raise because I wear a hat."},
    ],
    "ethics-virtue": [
        {"label": 1, "scenario": "She shared her lunch with a new classmate. [SEP] generous"},
        {"label": 0, "scenario": "She shared her lunch with a new classmate. [SEP] selfish"},
    ],
    "ethics-utilitarianism": [{"baseline": "I found twenty dollars.", "less_pleasant": "I found one dollar."}],
    "hellaswag": [{
        "ind": 4, "activity_label": "Cooking", "ctx_a": "A man is cooking.", "ctx_b": "he", "ctx": "A man is cooking. he",
        "endings": ["stirs the pot.", "flies away.", "sings to the moon.", "eats the stove."], "source_id": "x",
        "split": "train", "split_type": "indomain", "label": "0",
    }],
    "mc_taco": [
        {"sentence": "He ate his dinner.", "question": "How long did dinner take?", "answer": "30 minutes",
         "label": 1, "category": "Event Duration"},
        {"sentence": "He ate his dinner.", "question": "How long did dinner take?", "answer": "3 years",
         "label": 0, "category": "Event Duration"},
    ],
    "multirc": [
        {"paragraph": "Sam planted tomatoes in May.", "question": "When did Sam plant?", "answer": "In May",
         "idx": {"paragraph": 0, "question": 0, "answer": 0}, "label": 1},
        {"paragraph": "Sam planted tomatoes in May.", "question": "When did Sam plant?", "answer": "In June",
         "idx": {"paragraph": 0, "question": 0, "answer": 1}, "label": 0},
    ],
    "openbookqa": [{
        "id": "7-980", "question_stem": "The sun is a",
        "choices": {"text": ["planet", "star", "moon", "comet"], "label": ["A", "B", "C", "D"]}, "answerKey": "B",
    }],
    "paws": [
        {"id": 1, "sentence1": "The cat sat on the mat.", "sentence2": "On the mat sat the cat.", "label": 1},
        {"id": 2, "sentence1": "The cat sat on the mat.", "sentence2": "The mat sat on the cat.", "label": 0},
    ],
    "piqa": [
        {"goal": "Open a jar.", "sol1": "Twist the lid.", "sol2": "Hit it with a fish.", "label": 0},
        {"goal": "Dry a towel.", "sol1": "Put it in the fridge.", "sol2": "Hang it in the sun.", "label": 1},
    ],
    "quail": [{
        "id": "q1", "context_id": "f1", "question_id": "f1_1", "domain": "fiction", "metadata": {"author": "", "title": "", "url": ""},
        "context": "Mia baked bread every morning.", "question": "What did Mia bake?",
        "question_type": "Entity_properties", "answers": ["Cake.", "Bread.", "Pies.", "not enough information"],
        "correct_answer_id": 1,
    }],
    "quartz": [{
        "id": "q1", "question": "A heavier ball rolls", "choices": {"text": ["faster", "slower"], "label": ["A", "B"]},
        "answerKey": "A", "para": "Heavier balls roll faster down a slope.", "para_id": "p1",
        "para_anno": {"effect_prop": "", "cause_dir_str": "", "effect_dir_str": "", "cause_dir_sign": "", "effect_dir_sign": "", "cause_prop": ""},
        "question_anno": {"more_effect_dir": "", "less_effect_dir": "", "less_cause_prop": "", "more_effect_prop": "", "less_effect_prop": "", "less_cause_dir": ""},
    }],
    "social_i_qa": [{
        "context": "Jan gave her friend a ride home.", "question": "How would the friend feel?",
        "answerA": "annoyed", "answerB": "grateful", "answerC": "sleepy", "label": "2",
    }],
    "sst2": [
        {"idx": 0, "sentence": "a gripping, beautifully shot film", "label": 1},
        {"idx": 1, "sentence": "a dull and lifeless mess", "label": 0},
    ],
    "wic": [
        {"word": "bank", "sentence1": "He sat on the river bank.", "sentence2": "She robbed the bank.", "start1": 17,
         "start2": 15, "end1": 21, "end2": 19, "idx": 0, "label": 0},
        {"word": "run", "sentence1": "I run every day.", "sentence2": "They run each morning.", "start1": 2,
         "start2": 5, "end1": 5, "end2": 8, "idx": 1, "label": 1},
    ],
}
HUB_ROWS["openbookqa-published"] = HUB_ROWS["openbookqa"]

# The column of each of Burns et al.'s five whose text gets a row's split and number, so
# that every row of a local copy is a distinct text.
MARKED = {"amazon_polarity": "content", "sciq": "question", "anthropic_hh": "chosen", "cosmos_qa": "context", "boolq": "passage"}


def benchmark_rows(task: str, split: str, n: int) -> list[dict]:
    """``n`` rows of ``task`` for hub split ``split``: its example rows in turn, the marked
    column (if any) ending in "(split i)"."""
    rows = HUB_ROWS[task]
    out = []
    for i in range(n):
        row = dict(rows[i % len(rows)])
        if task in MARKED:
            row[MARKED[task]] = f"{row[MARKED[task]]} ({split} {i})"
            if task == "anthropic_hh":
                row["rejected"] = f"{row['rejected']} ({split} {i})"
        out.append(row)
    return out


@pytest.fixture(scope="session")
def save_benchmark_copy():
    """Writes a local copy of a benchmark task as ``datasets.load_dataset(...).save_to_disk``
    would: a DatasetDict with the hub's split names and columns."""

    def save(task: str, folder: Path, n_train: int = 12, n_test: int = 6) -> Path:
        import datasets

        from models.nlp_tasks import TASKS

        datasets.disable_progress_bars()
        spec = TASKS[task]
        dd = datasets.DatasetDict({
            spec.train_split: datasets.Dataset.from_list(benchmark_rows(task, spec.train_split, n_train)),
            spec.test_split: datasets.Dataset.from_list(benchmark_rows(task, spec.test_split, n_test)),
        })
        dd.save_to_disk(str(folder))
        return folder

    return save

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
