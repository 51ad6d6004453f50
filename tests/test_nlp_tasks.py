"""The NLP benchmark tasks: each formatter on known rows, the protocols' coin flips and
balancing, reading a task's hub splits from local copies, and the hub test split kept as
the run's test split."""

import random

import numpy as np
import pytest
from conftest import HUB_ROWS, benchmark_rows

from flows.config import ConfigError, load_config
from tasks.specs import DatasetSource
from models.nlp_tasks import TASKS
from models.splits import split_rows, stratified_split
from models.task_rows import balanced_order, format_split, split_order
from tasks.benchmark_data import read_benchmark
from tasks.errors import DataError

# random.Random(1).random() is 0.134… (< 0.5: the coin shows the right answer);
# random.Random(0).random() is 0.844… (the coin shows a wrong one).
RIGHT, WRONG = 1, 0


def _row(task, i=0):
    return HUB_ROWS[task][i]


# (task, row, seed, the texts it may give, label). One id per task and branch; where a
# wrong answer is drawn at random, every wrong answer it may draw is listed.
CASES = {
    "amazon_polarity-positive": ("amazon_polarity", 0, 0, {"Great kettle Boils water fast and looks good."}, 1),
    "amazon_polarity-negative": ("amazon_polarity", 1, 0, {"Broke in a week The handle snapped off."}, 0),
    "sciq-right": ("sciq", 0, RIGHT, {"Q: What gas do plants absorb from the air? A: carbon dioxide"}, 1),
    "sciq-wrong": ("sciq", 0, WRONG, {f"Q: What gas do plants absorb from the air? A: {a}" for a in ("oxygen", "helium", "argon")}, 0),
    "anthropic_hh-chosen": ("anthropic_hh", 0, RIGHT, {_row("anthropic_hh")["chosen"]}, 1),
    "anthropic_hh-rejected": ("anthropic_hh", 0, WRONG, {_row("anthropic_hh")["rejected"]}, 0),
    "cosmos_qa-right": (
        "cosmos_qa", 0, RIGHT,
        {"Context: Tom missed the bus and walked to work.\nQuestion: Why was Tom late?\nAnswer: He missed the bus."}, 1,
    ),
    "cosmos_qa-wrong": (
        "cosmos_qa", 0, WRONG,
        {f"Context: Tom missed the bus and walked to work.\nQuestion: Why was Tom late?\nAnswer: {a}"
         for a in ("He overslept.", "He took a taxi.", "He was sick.")}, 0,
    ),
    # "None of the above choices ." as the right answer: always 0, whatever the coin would say.
    "cosmos_qa-none-of-the-above": (
        "cosmos_qa", 1, RIGHT,
        {f"Context: The shop was closed on Sunday.\nQuestion: What did Ann buy?\nAnswer: {a}" for a in ("Bread.", "Milk.", "Eggs.")},
        0,
    ),
    "boolq-yes": (
        "boolq", 0, 0, {"Passage: The Sun is the star at the centre of the Solar System.\nQuestion: is the sun a star"}, 1,
    ),
    "boolq-no": ("boolq", 1, 0, {"Passage: The Moon is Earth's only natural satellite.\nQuestion: is the moon a planet"}, 0),
    "anli-r2-entailment": (
        "anli-r2", 0, 0,
        {"Premise: A dog runs in the park.\nHypothesis: An animal is outside.\n\nDoes the premise entail the hypothesis?"}, 1,
    ),
    "anli-r2-contradiction": (
        "anli-r2", 1, 0,
        {"Premise: A dog runs in the park.\nHypothesis: The dog is asleep.\n\nDoes the premise entail the hypothesis?"}, 0,
    ),
    "anli-r2-neutral": (
        "anli-r2", 2, 0,
        {"Premise: A dog runs in the park.\nHypothesis: The dog is happy.\n\nDoes the premise entail the hypothesis?"}, 0,
    ),
    "cola-acceptable": ("cola", 0, 0, {"The book was read by Mary."}, 1),
    "cola-unacceptable": ("cola", 1, 0, {"Book the Mary read was by."}, 0),
    "dream-right": ("dream", 0, RIGHT, {"M: Hi, I'm Bob.\nW: Hello, Bob.\n\nQ: Who spoke first? A: The man."}, 1),
    "dream-wrong": (
        "dream", 0, WRONG, {f"M: Hi, I'm Bob.\nW: Hello, Bob.\n\nQ: Who spoke first? A: {a}" for a in ("The woman.", "Nobody.")}, 0,
    ),
    "ethics-deontology-valid": (
        "ethics-deontology", 0, 0,
        {"Q: Is the following a morally valid excuse?\n\nAren't you supposed to mow the lawn?\n\nNo, I mowed it yesterday.\n\nA:"},
        1,
    ),
    "ethics-deontology-invalid": (
        "ethics-deontology", 1, 0,
        {"Q: Is the following a morally valid excuse?\n\nAren't you supposed to mow the lawn?\n\nNo, the lawn is green.\n\nA:"}, 0,
    ),
    "ethics-justice-just": (
        "ethics-justice", 0, 0,
        {"Q: Does this statement exemplify justice?\n\nI deserve a raise because I doubled our sales.\n\nA:"}, 1,
    ),
    "ethics-justice-unjust": (
        "ethics-justice", 1, 0, {"Q: Does this statement exemplify justice?\n\nI deserve a raise because I wear a hat.\n\nA:"}, 0,
    ),
    "ethics-virtue-match": (
        "ethics-virtue", 0, 0,
        {"Q: Does this behavior match the adjective that follows?\n\nShe shared her lunch with a new classmate. [SEP] generous\n\nA:"},
        1,
    ),
    "ethics-virtue-mismatch": (
        "ethics-virtue", 1, 0,
        {"Q: Does this behavior match the adjective that follows?\n\nShe shared her lunch with a new classmate. [SEP] selfish\n\nA:"},
        0,
    ),
    # The two scenarios are shown in a shuffled order; the answer names the baseline's number (right) or the other's.
    "ethics-utilitarianism-right": (
        "ethics-utilitarianism", 0, RIGHT,
        {"Which is more pleasant?\n1) I found twenty dollars.\n2) I found one dollar. A: 1",
         "Which is more pleasant?\n1) I found one dollar.\n2) I found twenty dollars. A: 2"}, 1,
    ),
    "ethics-utilitarianism-wrong": (
        "ethics-utilitarianism", 0, WRONG,
        {"Which is more pleasant?\n1) I found twenty dollars.\n2) I found one dollar. A: 2",
         "Which is more pleasant?\n1) I found one dollar.\n2) I found twenty dollars. A: 1"}, 0,
    ),
    "hellaswag-right": (
        "hellaswag", 0, RIGHT,
        {"Context:\nA man is cooking. he\n\nContinuations:\n\nstirs the pot.\nflies away.\nsings to the moon.\neats the stove."
         '\n\nQ: Is "stirs the pot." the best continuation?'}, 1,
    ),
    "hellaswag-wrong": (
        "hellaswag", 0, WRONG,
        {"Context:\nA man is cooking. he\n\nContinuations:\n\nstirs the pot.\nflies away.\nsings to the moon.\neats the stove."
         f'\n\nQ: Is "{a}" the best continuation?' for a in ("flies away.", "sings to the moon.", "eats the stove.")}, 0,
    ),
    "mc_taco-plausible": (
        "mc_taco", 0, 0, {"He ate his dinner.\n\nGiven the above, How long did dinner take? Is the answer 30 minutes?"}, 1,
    ),
    "mc_taco-implausible": (
        "mc_taco", 1, 0, {"He ate his dinner.\n\nGiven the above, How long did dinner take? Is the answer 3 years?"}, 0,
    ),
    "multirc-right": (
        "multirc", 0, 0, {'Passage:\n\nSam planted tomatoes in May.\n\nQ: "When did Sam plant?" Is the answer "In May"?'}, 1,
    ),
    "multirc-wrong": (
        "multirc", 1, 0, {'Passage:\n\nSam planted tomatoes in May.\n\nQ: "When did Sam plant?" Is the answer "In June"?'}, 0,
    ),
    "openbookqa-right": (
        "openbookqa", 0, RIGHT, {"Q: The sun is a\n\nChoices:\nA) planet\nB) star\nC) moon\nD) comet\n\nAnswer: star"}, 1,
    ),
    "openbookqa-wrong": (
        "openbookqa", 0, WRONG,
        {f"Q: The sun is a\n\nChoices:\nA) planet\nB) star\nC) moon\nD) comet\n\nAnswer: {a}" for a in ("planet", "moon", "comet")}, 0,
    ),
    # As published: the right answer by its letter, a wrong one by its text.
    "openbookqa-published-right": (
        "openbookqa-published", 0, RIGHT, {"Q: The sun is a\n\nChoices:\nA) planet\nB) star\nC) moon\nD) comet\n\nAnswer: B"}, 1,
    ),
    "openbookqa-published-wrong": (
        "openbookqa-published", 0, WRONG,
        {f"Q: The sun is a\n\nChoices:\nA) planet\nB) star\nC) moon\nD) comet\n\nAnswer: {a}" for a in ("planet", "moon", "comet")}, 0,
    ),
    "paws-paraphrase": (
        "paws", 0, 0,
        {"Sent 1: The cat sat on the mat.\nSent 2: On the mat sat the cat.\n\nQ: Are these sentences semantically equivalent?"}, 1,
    ),
    "paws-not": (
        "paws", 1, 0,
        {"Sent 1: The cat sat on the mat.\nSent 2: The mat sat on the cat.\n\nQ: Are these sentences semantically equivalent?"}, 0,
    ),
    "piqa-right-sol1": ("piqa", 0, RIGHT, {"Q: Open a jar. A: Twist the lid."}, 1),
    "piqa-wrong-sol2": ("piqa", 0, WRONG, {"Q: Open a jar. A: Hit it with a fish."}, 0),
    "piqa-right-sol2": ("piqa", 1, RIGHT, {"Q: Dry a towel. A: Hang it in the sun."}, 1),
    "quail-right": ("quail", 0, RIGHT, {'Passage:\n\nMia baked bread every morning.\n\nQ: "What did Mia bake?" Is the answer "Bread."?'}, 1),
    "quail-wrong": (
        "quail", 0, WRONG,
        {f'Passage:\n\nMia baked bread every morning.\n\nQ: "What did Mia bake?" Is the answer "{a}"?'
         for a in ("Cake.", "Pies.", "not enough information")}, 0,
    ),
    "quartz-right": (
        "quartz", 0, RIGHT, {'Passage:\nHeavier balls roll faster down a slope.\n\nQ: "A heavier ball rolls" Is the answer "faster"?'}, 1,
    ),
    "quartz-wrong": (
        "quartz", 0, WRONG, {'Passage:\nHeavier balls roll faster down a slope.\n\nQ: "A heavier ball rolls" Is the answer "slower"?'}, 0,
    ),
    "social_i_qa-right": (
        "social_i_qa", 0, RIGHT,
        {'Context:\nJan gave her friend a ride home.\n\nQuestion: "How would the friend feel?"\n\nChoices:\nannoyed\ngrateful\nsleepy'
         '\n\nIs the answer "grateful"?'}, 1,
    ),
    "social_i_qa-wrong": (
        "social_i_qa", 0, WRONG,
        {'Context:\nJan gave her friend a ride home.\n\nQuestion: "How would the friend feel?"\n\nChoices:\nannoyed\ngrateful\nsleepy'
         f'\n\nIs the answer "{a}"?' for a in ("annoyed", "sleepy")}, 0,
    ),
    "sst2-positive": ("sst2", 0, 0, {"a gripping, beautifully shot film"}, 1),
    "sst2-negative": ("sst2", 1, 0, {"a dull and lifeless mess"}, 0),
    "wic-different": (
        "wic", 0, 0,
        {'Sentence 1:\nHe sat on the river bank.\n\nSentence 2:\nShe robbed the bank.\n\nQ: Does "bank" have the same meaning'
         " in the above sentences?"}, 0,
    ),
    "wic-same": (
        "wic", 1, 0,
        {'Sentence 1:\nI run every day.\n\nSentence 2:\nThey run each morning.\n\nQ: Does "run" have the same meaning'
         " in the above sentences?"}, 1,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_formatter(case):
    task, i, seed, texts, label = CASES[case]
    text, got = TASKS[task].format(HUB_ROWS[task][i], random.Random(seed))
    assert got == label and isinstance(got, int)
    assert text in texts, text


def test_every_task_has_formatter_cases_and_a_fixture():
    tested = {task for task, *_ in CASES.values()}
    assert tested == set(TASKS) == set(HUB_ROWS)


def test_burns_tasks_read_the_authors_splits_and_ids():
    burns = {n: (t.hub, t.train_split, t.test_split) for n, t in TASKS.items() if t.protocol.name == "burns"}
    assert burns == {
        "amazon_polarity": ("fancyzhx/amazon_polarity", "train", "test"),
        "sciq": ("allenai/sciq", "train", "test"),
        "anthropic_hh": ("Anthropic/hh-rlhf", "train", "test"),
        "cosmos_qa": ("allenai/cosmos_qa", "train", "validation"),
        "boolq": ("google/boolq", "train", "validation"),
    }
    assert sum(t.protocol.name == "eleuther" for t in TASKS.values()) >= 10


# --- the protocols: coin flips, order, balancing -------------------------------------------------


def _sciq_rows(n):
    return [dict(HUB_ROWS["sciq"][0], question=f"question {i}?") for i in range(n)]


def test_the_coin_flips_are_one_stream_from_the_data_seed_in_hub_order():
    rows = _sciq_rows(2000)
    first = format_split(rows, TASKS["sciq"].format, seed=1)
    # Random(1) draws 0.134, then 0.847: row 0 shows the right answer, row 1 a wrong one.
    assert first.label[:2].tolist() == [1, 0] and first.row[:3].tolist() == [0, 1, 2]
    again = format_split(rows, TASKS["sciq"].format, seed=1)
    assert again.text == first.text and np.array_equal(again.label, first.label)
    other = format_split(rows, TASKS["sciq"].format, seed=2)
    assert not np.array_equal(other.label, first.label)
    assert abs(first.label.mean() - 0.5) < 0.05  # a fair coin over 2,000 rows (sd 0.011)


def test_burns_takes_the_first_rows_and_stops_reading_there():
    rows = _sciq_rows(500)
    capped = format_split(rows, TASKS["sciq"].format, seed=0, cap=40)
    whole = format_split(rows, TASKS["sciq"].format, seed=0)
    assert capped.read == 40 and capped.text == whole.text[:40]


def test_eleuther_order_is_datasets_own_shuffle():
    import datasets

    table = datasets.Dataset.from_dict({"i": list(range(57))})
    assert split_order(57, 7, shuffle=True).tolist() == table.shuffle(seed=7)["i"]
    assert split_order(5, 7, shuffle=False).tolist() == [0, 1, 2, 3, 4]


def test_balancing_keeps_every_minority_row_and_follows_eleuthers_order():
    """Checked against the published computation written with ``datasets``' own operations:
    the minority class in order, the majority shuffled with the seed and cut, the whole
    shuffled with the seed."""
    import datasets

    label = np.array([1, 1, 0, 1, 1, 0, 1, 1, 1, 0, 1])
    order = balanced_order(label, seed=5)
    assert np.bincount(label[order]).tolist() == [3, 3]
    table = datasets.Dataset.from_dict({"i": list(range(len(label))), "y": label.tolist()})
    minority = table.filter(lambda r: r["y"] == 0)
    majority = table.filter(lambda r: r["y"] == 1).shuffle(seed=5).select(range(len(minority)))
    expected = datasets.concatenate_datasets([minority, majority]).shuffle(seed=5)["i"]
    assert order.tolist() == expected


def test_an_eleuther_split_is_balanced_and_capped_after_balancing():
    rows = [dict(HUB_ROWS["cola"][i % 4 != 0]) for i in range(400)]  # 100 acceptable, 300 not
    made = format_split(rows, TASKS["cola"].format, seed=0, shuffle=True, balance=True, cap=150)
    assert len(made.label) == 150 and made.read == 400
    whole = format_split(rows, TASKS["cola"].format, seed=0, shuffle=True, balance=True)
    assert np.bincount(whole.label).tolist() == [100, 100]
    assert made.row.tolist() == whole.row[:150].tolist()


def test_empty_texts_are_dropped_and_counted():
    rows = [dict(HUB_ROWS["amazon_polarity"][i % 2]) for i in range(10)]
    rows[3] = {"title": "", "content": "", "label": 1}  # " " once joined
    rows[7] = {"title": "  ", "content": "\n", "label": 0}
    made = format_split(rows, TASKS["amazon_polarity"].format, seed=0)
    assert made.empty == 2 and made.read == 10 and len(made.text) == 8 and 3 not in made.row and 7 not in made.row


# --- where the rows come from --------------------------------------------------------------------


def _source(task, path, **kw):
    return DatasetSource(kind="dataset", name=task, benchmark=task, path=str(path), **kw)


@pytest.mark.parametrize("task", list(TASKS))
def test_a_saved_copy_with_the_hub_splits_is_read(task, tmp_path, save_benchmark_copy):
    """Every task reads its own two hub splits, by their hub names, from a DatasetDict
    saved with its hub columns; the hub test split's rows are the test rows."""
    spec = TASKS[task]
    copy = save_benchmark_copy(task, tmp_path / task, n_train=12, n_test=7)
    rows, facts = read_benchmark(_source(task, copy))
    assert facts["hub_splits"] == {"train": spec.train_split, "test": spec.test_split}
    assert facts["rows_kept"] == {"train": 12, "test": 7} and facts["empty_dropped"] == {"train": 0, "test": 0}
    assert rows.test.tolist() == [False] * 12 + [True] * 7
    # The hub's order (Burns et al.) or the seeded shuffle (EleutherAI), one stream per split.
    order = split_order(7, 0, spec.protocol.shuffle).tolist()
    assert rows.row[rows.test].tolist() == order
    assert set(rows.label.tolist()) == {0, 1} and all(t.strip() for t in rows.text)
    rng, test_rows = random.Random(0), benchmark_rows(task, spec.test_split, 7)
    assert rows.text[12:] == [spec.format(test_rows[i], rng)[0] for i in order]


def test_mc_taco_trains_on_the_hub_test_split(tmp_path, save_benchmark_copy):
    import datasets

    copy = save_benchmark_copy("mc_taco", tmp_path / "mc", n_train=10, n_test=4)
    assert set(datasets.load_from_disk(str(copy))) == {"test", "validation"}
    rows, facts = read_benchmark(_source("mc_taco", copy))
    assert facts["hub_splits"] == {"train": "test", "test": "validation"} and rows.test.sum() == 4


def test_hub_snapshot_files_read_like_the_saved_copy(tmp_path, save_benchmark_copy):
    """The files of a hub snapshot (parquet per split under data/) and a folder per saved
    split give the same rows as the saved DatasetDict."""
    import datasets

    saved = save_benchmark_copy("boolq", tmp_path / "saved", n_train=20, n_test=8)
    dd = datasets.load_from_disk(str(saved))
    snapshot = tmp_path / "snapshot"
    (snapshot / "data").mkdir(parents=True)
    for split, table in dd.items():
        table.to_parquet(str(snapshot / "data" / f"{split}-00000-of-00001.parquet"))
    per_split = tmp_path / "per_split"
    for split, table in dd.items():
        table.save_to_disk(str(per_split / split))
    reference, _ = read_benchmark(_source("boolq", saved))
    for folder in (snapshot, per_split):
        rows, facts = read_benchmark(_source("boolq", folder))
        assert rows.text == reference.text and rows.test.tolist() == reference.test.tolist()
        assert facts["local_copy"] == str(folder) and facts["revision"] is None


def test_the_hubs_parquet_conversion_layout_is_read_per_config(tmp_path, save_benchmark_copy):
    """refs/convert/parquet lays a repository out as CONFIG/SPLIT/0000.parquet: the task's
    config folder is used (the other configs' folders are ignored)."""
    import datasets

    dd = datasets.load_from_disk(str(save_benchmark_copy("ethics-justice", tmp_path / "saved", 10, 5)))
    for config, table in (("justice", dd), ("virtue", dd)):
        for split, part in table.items():
            (tmp_path / "export" / config / split).mkdir(parents=True)
            part.to_parquet(str(tmp_path / "export" / config / split / "0000.parquet"))
    rows, facts = read_benchmark(_source("ethics-justice", tmp_path / "export"))
    assert facts["rows_kept"] == {"train": 10, "test": 5}
    assert rows.text[0].startswith("Q: Does this statement exemplify justice?")


def test_a_copy_without_the_tasks_splits_or_columns_is_one_line(tmp_path, save_benchmark_copy):
    import datasets

    wrong_splits = datasets.DatasetDict({"train": datasets.Dataset.from_list(HUB_ROWS["boolq"] * 3)})
    wrong_splits.save_to_disk(str(tmp_path / "train_only"))
    with pytest.raises(DataError, match=r"has the splits \['train'\]; task boolq reads 'train' \(train\) and 'validation'"):
        read_benchmark(_source("boolq", tmp_path / "train_only"))
    sciq_as_boolq = save_benchmark_copy("sciq", tmp_path / "sciq")
    datasets.DatasetDict({"train": datasets.load_from_disk(str(sciq_as_boolq))["train"],
                          "validation": datasets.load_from_disk(str(sciq_as_boolq))["test"]}).save_to_disk(str(tmp_path / "mix"))
    with pytest.raises(DataError, match=r"source=boolq: the 'train' split cannot be formatted .*'passage'") as e:
        read_benchmark(_source("boolq", tmp_path / "mix"))
    assert "\n" not in str(e.value)
    one = datasets.load_from_disk(str(save_benchmark_copy("boolq", tmp_path / "boolq")))["train"]
    one.save_to_disk(str(tmp_path / "one_split"))
    with pytest.raises(DataError, match="is one saved split"):
        read_benchmark(_source("boolq", tmp_path / "one_split"))


def test_the_hub_is_asked_for_the_commit_and_offline_says_how_to_use_a_copy():
    from tasks.real_data import resolve_source

    source = load_config(None, ["source=sciq"]).data.sources[0]
    with pytest.raises(DataError) as e:
        resolve_source(source)  # HF_HUB_OFFLINE is set for the tests
    message = str(e.value)
    assert message.startswith("source=sciq: the hub dataset 'allenai/sciq' cannot be reached (HF_HUB_OFFLINE is set)")
    assert "datasets.load_dataset('allenai/sciq').save_to_disk(DIR)" in message and "source.path=DIR" in message
    # A commit given in full is the cache key as it is: no need to ask the hub.
    sha = "0123456789abcdef0123456789abcdef01234567"
    pinned, fingerprint = resolve_source(source.model_copy(update={"revision": sha}))
    assert pinned.revision == sha and fingerprint == f"hub:allenai/sciq:@{sha}"


# --- the run's splits --------------------------------------------------------------------------


SHARES = {"weak_train": 1.0, "w2s_train": 1.0, "val": 0.5, "test": 1.0}


def test_a_fixed_test_split_is_the_runs_test_split_whole():
    rng = np.random.default_rng(0)
    label = rng.integers(0, 2, size=300)
    fixed = np.zeros(300, bool)
    fixed[240:] = True
    index = split_rows(label, fixed, SHARES, balance=False, rng=np.random.default_rng(4))
    assert sorted(index["test"].tolist()) == list(range(240, 300))
    train = np.concatenate([index[s] for s in ("weak_train", "w2s_train", "val")])
    assert sorted(train.tolist()) == list(range(240))
    assert [len(index[s]) for s in ("weak_train", "w2s_train", "val")] == pytest.approx([96, 96, 48], abs=2)
    # Balanced: each part is cut on its own, no row crosses between them.
    balanced = split_rows(label, fixed, SHARES, balance=True, rng=np.random.default_rng(4))
    assert set(balanced["test"].tolist()) <= set(range(240, 300))
    test_counts = np.bincount(label[balanced["test"]], minlength=2)
    assert test_counts[0] == test_counts[1]


def test_pooled_rows_split_as_before():
    label = np.repeat([0, 1], [70, 30])
    index = split_rows(label, None, SHARES, balance=False, rng=np.random.default_rng(9))
    parts = stratified_split(label, SHARES, np.random.default_rng(9))
    assert all(np.array_equal(index[s], parts[s]) for s in SHARES)


# --- configuration -----------------------------------------------------------------------------


def test_a_named_task_brings_its_papers_defaults():
    burns = load_config(None, ["source=sciq"])
    source = burns.data.sources[0]
    assert (source.benchmark, source.balance, source.max_rows, source.max_test_rows, source.seed) == ("sciq", False, 20_000, 10_000, 0)
    assert burns.strong.backbone.name == "minilm" and burns.selection.policy == "all" and burns.data.weak_view.kind == "bow"
    eleuther = load_config(None, ["source=anli-r2", "source.seed=3"]).data.sources[0]
    assert (eleuther.balance, eleuther.max_rows, eleuther.max_test_rows, eleuther.seed) == (True, 20_500, 1_000, 3)


def test_the_data_seed_is_apart_from_the_runs_seed_and_in_the_ingest_key(tmp_path, save_benchmark_copy):
    from tasks.ingest_dataset import ingest_dataset
    from tasks.real_data import resolve_source

    copy = save_benchmark_copy("sciq", tmp_path / "sciq")

    def key(*overrides):
        config = load_config(None, ["source=sciq", f"source.path={copy}", *overrides])
        return ingest_dataset.fn.cache_key(*resolve_source(config.data.sources[0]))

    assert key("seed=5") == key("seed=0")  # the run's seed: the same rows, embedded once
    assert key("source.seed=1") != key()


def test_name_in_a_path_stands_for_the_sources_name(tmp_path, save_benchmark_copy):
    save_benchmark_copy("boolq", tmp_path / "boolq")
    config = load_config(None, ["source=boolq", f"source.path={tmp_path}/{{name}}"])
    assert config.data.sources[0].path == str(tmp_path / "boolq")


def test_a_sweep_over_tasks_keeps_each_tasks_local_copy(tmp_path, save_benchmark_copy):
    from flows.study_config import SweepConfig

    for task in ("sciq", "boolq"):
        save_benchmark_copy(task, tmp_path / task)
    sweep = SweepConfig(grid={"source": ["sciq", "boolq"], "seed": [0, 1]}, overrides=(f"source.path={tmp_path}/{{name}}",))
    cells = [sweep.cell(axes) for axes in sweep.combinations()]
    assert [(c.data.sources[0].benchmark, c.data.sources[0].path, c.seed) for c in cells] == [
        ("sciq", str(tmp_path / "sciq"), 0), ("sciq", str(tmp_path / "sciq"), 1),
        ("boolq", str(tmp_path / "boolq"), 0), ("boolq", str(tmp_path / "boolq"), 1),
    ]


@pytest.mark.parametrize(
    "overrides, names",
    [
        (["source.benchmark=sciqq"], "unknown task 'sciqq'"),
        (["source=sciq", "source.hub=allenai/sciq"], "give path= for a local copy"),
        (["source=boolq", "source.text_column=passage"], "text_column does not apply"),
        (["source=spam7", "source.max_test_rows=10"], "max_test_rows"),
        (["source=boolqq"], "benchmark tasks: amazon_polarity, sciq"),
    ],
)
def test_bad_benchmark_settings_name_the_key(overrides, names):
    with pytest.raises(ConfigError, match=names):
        load_config(None, overrides)


def test_a_benchmark_task_without_a_backbone_is_encoded_by_the_bundled_minilm():
    assert load_config(None, ["source=boolq", "strong.backbone=null"]).strong.backbone.name == "minilm"


def test_the_hub_loader_reads_a_repository_and_names_a_loading_script(tmp_path, save_benchmark_copy):
    """The hub path's own call, on folders laid out as hub repositories (no hub here)."""
    import dataclasses

    import datasets

    from tasks.benchmark_data import _hub_split

    dd = datasets.load_from_disk(str(save_benchmark_copy("piqa", tmp_path / "saved", 10, 4)))
    repo = tmp_path / "piqa-repo"
    (repo / "data").mkdir(parents=True)
    for split, table in dd.items():
        table.to_parquet(str(repo / "data" / f"{split}-00000-of-00001.parquet"))
    spec = dataclasses.replace(TASKS["piqa"], hub=str(repo))
    assert _hub_split(spec, None, "validation")["goal"] == dd["validation"]["goal"]
    scripted = tmp_path / "piqa"
    scripted.mkdir()
    (scripted / "piqa.py").write_text("# a loading script\n")
    with pytest.raises(DataError, match=r"ships a loading script.*revision='refs/convert/parquet'.*source.path=DIR"):
        _hub_split(dataclasses.replace(spec, hub=str(scripted)), None, "train")
