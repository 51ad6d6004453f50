"""The NLP benchmark tasks of the weak-to-strong literature, each a binary classification of one text.

A task is one entry of ``TASKS``: where its rows live on the Hugging Face hub (dataset id,
config, the hub split that serves as the run's train rows and the one that serves as its
test rows), the paper whose protocol it follows, and its formatter. A formatter is a plain
function of one hub row (a mapping in the hub's column names) and a ``random.Random``; it
returns the text and the label (1 = "true": the answer shown is the right one, the
review is positive, …).

Formatters draw from the generator exactly as the authors' code does (a coin
``rng.random() < 0.5``, then ``rng.choice`` over the wrong answers in the dataset's order),
so that one ``random.Random(seed)`` stream over the same rows in the same order gives the
authors' texts and labels. ``models/task_rows.py`` runs that stream.

Standard library only: ``w2s sources`` and the config read this registry without importing
numpy, torch or Prefect.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable, Mapping

Row = Mapping[str, Any]
Formatter = Callable[[Row, random.Random], "tuple[str, int]"]


@dataclass(frozen=True)
class Protocol:
    """How a paper turns one hub split into examples.

    ``shuffle``: the split is permuted with the seed before formatting (EleutherAI's
    ``Dataset.shuffle(seed)``); otherwise rows are read in the hub's order (Burns et al.).
    ``balance``: the classes are undersampled to 50/50 after formatting (EleutherAI).
    ``train_rows`` / ``test_rows``: how many examples of each split the paper's defaults use.
    """

    name: str
    paper: str
    code: str
    shuffle: bool
    balance: bool
    train_rows: int
    test_rows: int


# openai/weak-to-strong train_simple.py: n_docs=20000, n_test_docs=10000, first rows of each split.
BURNS = Protocol(
    "burns", "Burns et al. 2023, Weak-to-strong generalization", "openai/weak-to-strong",
    shuffle=False, balance=False, train_rows=20_000, test_rows=10_000,
)
# EleutherAI/w2s sft_config.py: n_train=20000 + n_val=500 from the train split, n_test=1000.
ELEUTHER = Protocol(
    "eleuther", "EleutherAI w2s (Burns et al.'s setup, more tasks)", "EleutherAI/w2s",
    shuffle=True, balance=True, train_rows=20_500, test_rows=1_000,
)


@dataclass(frozen=True)
class NlpTask:
    """One benchmark task: hub coordinates, protocol, and formatter.

    ``hub`` is the dataset's id on the hub today; ``published_as`` the id in the authors'
    code where the hub has since moved it under an organisation (the old id redirects).
    ``hub_rows``: rows of the hub's train and test splits as the dataset card gives them.
    """

    name: str
    hub: str
    config: str | None
    train_split: str
    test_split: str
    format: Formatter
    label: str
    protocol: Protocol
    hub_rows: tuple[int, int] | None = None
    published_as: str | None = None
    note: str = ""


def _coin(rng: random.Random) -> int:
    """The authors' fair coin: 1 (show the right answer) with probability 1/2."""
    return int(rng.random() < 0.5)


# --- Burns et al. (openai/weak-to-strong) ------------------------------------------------------


def format_amazon_polarity(row: Row, rng: random.Random) -> tuple[str, int]:
    return f"{row['title']} {row['content']}", int(row["label"])


def format_sciq(row: Row, rng: random.Random) -> tuple[str, int]:
    label = _coin(rng)
    answer = row["correct_answer"] if label else rng.choice([row["distractor1"], row["distractor2"], row["distractor3"]])
    return f"Q: {row['question']} A: {answer}", label


def format_anthropic_hh(row: Row, rng: random.Random) -> tuple[str, int]:
    label = _coin(rng)
    return (row["chosen"] if label else row["rejected"]), label


NONE_OF_THE_ABOVE = "None of the above choices ."


def format_cosmos_qa(row: Row, rng: random.Random) -> tuple[str, int]:
    true = row[f"answer{int(row['label'])}"]
    # A true answer of "None of the above choices ." is always shown as a wrong one: no coin.
    label = 0 if NONE_OF_THE_ABOVE in true else _coin(rng)
    if label:
        answer = true
    else:
        answer = rng.choice([a for a in (row[f"answer{i}"] for i in range(4)) if a != true])
    return f"Context: {row['context']}\nQuestion: {row['question']}\nAnswer: {answer}", label


def format_boolq(row: Row, rng: random.Random) -> tuple[str, int]:
    return f"Passage: {row['passage']}\nQuestion: {row['question']}", int(row["answer"])


# --- EleutherAI's w2s ----------------------------------------------------------------------------


def format_anli(row: Row, rng: random.Random) -> tuple[str, int]:
    text = f"Premise: {row['premise']}\nHypothesis: {row['hypothesis']}\n\nDoes the premise entail the hypothesis?"
    return text, int(int(row["label"]) == 0)  # 0 is entailment; neutral and contradiction are 0 here


def format_sentence(row: Row, rng: random.Random) -> tuple[str, int]:
    """cola and sst2: the sentence itself."""
    return row["sentence"], int(row["label"])


def format_dream(row: Row, rng: random.Random) -> tuple[str, int]:
    label = _coin(rng)
    if label:
        answer = row["answer"]
    else:
        wrong = list(row["choice"])
        wrong.remove(row["answer"])
        answer = rng.choice(wrong)
    dialogue = "\n".join(row["dialogue"])
    return f"{dialogue}\n\nQ: {row['question']} A: {answer}", label


def format_ethics_deontology(row: Row, rng: random.Random) -> tuple[str, int]:
    text = f"Q: Is the following a morally valid excuse?\n\n{row['scenario']}\n\n{row['excuse']}\n\nA:"
    return text, int(row["label"])


def format_ethics_justice(row: Row, rng: random.Random) -> tuple[str, int]:
    return f"Q: Does this statement exemplify justice?\n\n{row['scenario']}\n\nA:", int(row["label"])


def format_ethics_virtue(row: Row, rng: random.Random) -> tuple[str, int]:
    return f"Q: Does this behavior match the adjective that follows?\n\n{row['scenario']}\n\nA:", int(row["label"])


def format_ethics_utilitarianism(row: Row, rng: random.Random) -> tuple[str, int]:
    label = _coin(rng)
    shown = [row["baseline"], row["less_pleasant"]]
    rng.shuffle(shown)
    pleasant = shown.index(row["baseline"])  # the baseline is the more pleasant one
    answer = pleasant if label else 1 - pleasant
    return f"Which is more pleasant?\n1) {shown[0]}\n2) {shown[1]} A: {answer + 1}", label


def format_hellaswag(row: Row, rng: random.Random) -> tuple[str, int]:
    label, right = _coin(rng), int(row["label"])
    endings = list(row["endings"])
    answer = endings[right] if label else rng.choice([e for i, e in enumerate(endings) if i != right])
    listed = "\n".join(endings)
    return f'Context:\n{row["ctx"]}\n\nContinuations:\n\n{listed}\n\nQ: Is "{answer}" the best continuation?', label


def format_mc_taco(row: Row, rng: random.Random) -> tuple[str, int]:
    return f"{row['sentence']}\n\nGiven the above, {row['question']} Is the answer {row['answer']}?", int(row["label"])


def format_multirc(row: Row, rng: random.Random) -> tuple[str, int]:
    text = f'Passage:\n\n{row["paragraph"]}\n\nQ: "{row["question"]}" Is the answer "{row["answer"]}"?'
    return text, int(row["label"])


def _openbookqa(row: Row, rng: random.Random, right_as_letter: bool) -> tuple[str, int]:
    label = _coin(rng)
    letters, texts = list(row["choices"]["label"]), list(row["choices"]["text"])
    right = letters.index(row["answerKey"])
    if label:
        answer = row["answerKey"] if right_as_letter else texts[right]
    else:
        answer = rng.choice(texts[:right] + texts[right + 1 :])
    listed = "\n".join(f"{a}) {t}" for a, t in zip(letters, texts))
    return f"Q: {row['question_stem']}\n\nChoices:\n{listed}\n\nAnswer: {answer}", label


def format_openbookqa(row: Row, rng: random.Random) -> tuple[str, int]:
    """The right answer is shown by its text, like the wrong ones."""
    return _openbookqa(row, rng, right_as_letter=False)


def format_openbookqa_published(row: Row, rng: random.Random) -> tuple[str, int]:
    """EleutherAI's published formatting: the right answer is shown by its letter ("A"), a
    wrong one by its text, so the label can be read off the answer's length."""
    return _openbookqa(row, rng, right_as_letter=True)


def format_paws(row: Row, rng: random.Random) -> tuple[str, int]:
    text = f"Sent 1: {row['sentence1']}\nSent 2: {row['sentence2']}\n\nQ: Are these sentences semantically equivalent?"
    return text, int(row["label"])


def format_piqa(row: Row, rng: random.Random) -> tuple[str, int]:
    label = _coin(rng)
    right, wrong = (row["sol2"], row["sol1"]) if int(row["label"]) else (row["sol1"], row["sol2"])
    return f"Q: {row['goal']} A: {right if label else wrong}", label


def format_quail(row: Row, rng: random.Random) -> tuple[str, int]:
    label, right = _coin(rng), int(row["correct_answer_id"])
    answers = list(row["answers"])
    answer = answers[right] if label else rng.choice([a for i, a in enumerate(answers) if i != right])
    return f'Passage:\n\n{row["context"]}\n\nQ: "{row["question"]}" Is the answer "{answer}"?', label


def format_quartz(row: Row, rng: random.Random) -> tuple[str, int]:
    label = _coin(rng)
    right = list(row["choices"]["label"]).index(row["answerKey"])
    answer = row["choices"]["text"][right if label else 1 - right]
    return f'Passage:\n{row["para"]}\n\nQ: "{row["question"]}" Is the answer "{answer}"?', label


def format_social_i_qa(row: Row, rng: random.Random) -> tuple[str, int]:
    label = _coin(rng)
    answers = [row["answerA"], row["answerB"], row["answerC"]]
    right = int(row["label"]) - 1  # the hub's label is "1", "2" or "3"
    answer = answers[right] if label else rng.choice([a for i, a in enumerate(answers) if i != right])
    listed = "\n".join(answers)
    text = f'Context:\n{row["context"]}\n\nQuestion: "{row["question"]}"\n\nChoices:\n{listed}\n\nIs the answer "{answer}"?'
    return text, label


def format_wic(row: Row, rng: random.Random) -> tuple[str, int]:
    text = (
        f"Sentence 1:\n{row['sentence1']}\n\nSentence 2:\n{row['sentence2']}\n\n"
        f'Q: Does "{row["word"]}" have the same meaning in the above sentences?'
    )
    return text, int(row["label"])


SHOWN_RIGHT = "1 = the answer shown is the right one (a coin picks it or a wrong one)"

TASKS: dict[str, NlpTask] = {
    t.name: t
    for t in [
        # Burns et al.'s five.
        NlpTask("amazon_polarity", "fancyzhx/amazon_polarity", None, "train", "test", format_amazon_polarity,
                "1 = positive review", BURNS, (3_600_000, 400_000), published_as="amazon_polarity"),
        NlpTask("sciq", "allenai/sciq", None, "train", "test", format_sciq, SHOWN_RIGHT, BURNS, (11_679, 1_000),
                published_as="sciq"),
        NlpTask("anthropic_hh", "Anthropic/hh-rlhf", None, "train", "test", format_anthropic_hh,
                "1 = the chosen dialogue, 0 = the rejected one (a coin picks which)", BURNS, (160_800, 8_552)),
        NlpTask("cosmos_qa", "allenai/cosmos_qa", None, "train", "validation", format_cosmos_qa,
                SHOWN_RIGHT + '; "None of the above choices ." as the right answer is 0', BURNS, (25_262, 2_985),
                published_as="cosmos_qa"),
        NlpTask("boolq", "google/boolq", None, "train", "validation", format_boolq, "1 = the answer is yes", BURNS,
                (9_427, 3_270), published_as="boolq"),
        # EleutherAI's w2s.
        NlpTask("anli-r2", "facebook/anli", None, "train_r2", "test_r2", format_anli,
                "1 = the premise entails the hypothesis", ELEUTHER, (45_460, 1_000)),
        NlpTask("cola", "nyu-mll/glue", "cola", "train", "validation", format_sentence,
                "1 = grammatically acceptable", ELEUTHER, (8_551, 1_043)),
        NlpTask("dream", "dataset-org/dream", None, "train", "test", format_dream, SHOWN_RIGHT, ELEUTHER,
                (6_116, 2_041), published_as="dream"),
        NlpTask("ethics-deontology", "hendrycks/ethics", "deontology", "train", "test", format_ethics_deontology,
                "1 = a reasonable excuse", ELEUTHER, (18_164, 3_596)),
        NlpTask("ethics-justice", "hendrycks/ethics", "justice", "train", "test", format_ethics_justice,
                "1 = a just statement", ELEUTHER, (21_791, 2_704)),
        NlpTask("ethics-virtue", "hendrycks/ethics", "virtue", "train", "test", format_ethics_virtue,
                "1 = the behaviour matches the adjective", ELEUTHER, (28_245, 4_975)),
        NlpTask("ethics-utilitarianism", "hendrycks/ethics", "utilitarianism", "train", "test",
                format_ethics_utilitarianism, "1 = the number shown names the more pleasant scenario", ELEUTHER,
                (13_737, 4_807)),
        NlpTask("hellaswag", "Rowan/hellaswag", None, "train", "validation", format_hellaswag, SHOWN_RIGHT, ELEUTHER,
                (39_905, 10_042)),
        # EleutherAI train on the hub's test split, which is the larger one.
        NlpTask("mc_taco", "CogComp/mc_taco", None, "test", "validation", format_mc_taco,
                "1 = a plausible answer", ELEUTHER, (9_442, 3_783), published_as="mc_taco"),
        NlpTask("multirc", "aps/super_glue", "multirc", "train", "validation", format_multirc,
                "1 = a right answer", ELEUTHER, (27_243, 4_848), published_as="super_glue"),
        NlpTask("openbookqa", "allenai/openbookqa", "main", "train", "test", format_openbookqa, SHOWN_RIGHT, ELEUTHER,
                (4_957, 500), note="the right answer shown by its text; EleutherAI's code shows it by its letter"),
        NlpTask("openbookqa-published", "allenai/openbookqa", "main", "train", "test", format_openbookqa_published,
                SHOWN_RIGHT + " (by its letter: the label leaks)", ELEUTHER, (4_957, 500),
                note="EleutherAI's formatting as published, kept to reproduce their numbers"),
        NlpTask("paws", "google-research-datasets/paws", "labeled_final", "train", "test", format_paws,
                "1 = paraphrases", ELEUTHER, (49_401, 8_000), published_as="paws"),
        NlpTask("piqa", "ybisk/piqa", None, "train", "validation", format_piqa, SHOWN_RIGHT, ELEUTHER, (16_113, 1_838),
                published_as="piqa"),
        NlpTask("quail", "textmachinelab/quail", None, "train", "validation", format_quail, SHOWN_RIGHT, ELEUTHER,
                (10_246, 2_164), published_as="quail"),
        NlpTask("quartz", "allenai/quartz", None, "train", "test", format_quartz, SHOWN_RIGHT, ELEUTHER, (2_696, 784)),
        NlpTask("social_i_qa", "allenai/social_i_qa", None, "train", "validation", format_social_i_qa, SHOWN_RIGHT,
                ELEUTHER, (33_410, 1_954), published_as="social_i_qa"),
        NlpTask("sst2", "stanfordnlp/sst2", None, "train", "validation", format_sentence, "1 = positive sentiment",
                ELEUTHER, (67_349, 872)),
        NlpTask("wic", "aps/super_glue", "wic", "train", "validation", format_wic,
                "1 = the word means the same in both sentences", ELEUTHER, (5_428, 638), published_as="super_glue"),
    ]
}


def task(name: str) -> NlpTask:
    """The task named ``name``; a KeyError names the known ones."""
    if name not in TASKS:
        raise KeyError(f"unknown benchmark task '{name}' (tasks: {', '.join(TASKS)})")
    return TASKS[name]
