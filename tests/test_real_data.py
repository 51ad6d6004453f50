"""Real data through HF ``datasets``: local files and folders, the hub path, splits and views."""


import numpy as np
import pytest

from tasks.specs import DatasetSource
from models.splits import stratified_split, undersample
from models.views import average_pool, hashed_bag_of_words
from tasks.real_data import DataError, load_table, read_rows, source_fingerprint

SHARES = {"weak_train": 1.0, "w2s_train": 4.0, "val": 0.5, "test": 2.0}


def _source(**kw) -> DatasetSource:
    return DatasetSource(kind="dataset", **kw)


def _table_rows(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return [
        {"Sepal Len": float(rng.normal()), "width_2": int(rng.integers(0, 9)), "kind": ["ham", "spam", "eggs"][i % 3],
         "note": f"row {i} says {['hello', 'goodbye', 'maybe'][i % 3]}", "site": ["a", "b"][i % 2]}
        for i in range(n)
    ]


@pytest.fixture
def files(tmp_path):
    """The same table as CSV, JSON lines, Parquet and a folder saved by ``datasets``."""
    import datasets
    import pandas as pd

    frame = pd.DataFrame(_table_rows())
    paths = {
        "csv": tmp_path / "t.csv", "jsonl": tmp_path / "t.jsonl", "parquet": tmp_path / "t.parquet", "dir": tmp_path / "saved",
    }
    frame.to_csv(paths["csv"], index=False)
    frame.to_json(paths["jsonl"], orient="records", lines=True)
    frame.to_parquet(paths["parquet"])
    datasets.Dataset.from_pandas(frame).train_test_split(0.25, seed=0).save_to_disk(str(paths["dir"]))
    return paths


def test_every_local_format_reads_the_same_rows(files):
    read = {
        name: read_rows(load_table(_source(path=str(p), label_column="kind")), _source(path=str(p), label_column="kind"))
        for name, p in files.items()
    }
    csv = read["csv"]
    assert csv.input_kind == "numeric" and csv.feature_names == ("Sepal Len", "width_2")
    assert csv.label_names == ["eggs", "ham", "spam"] and csv.features.shape == (40, 2)
    for name in ("jsonl", "parquet"):
        np.testing.assert_allclose(read[name].features, csv.features, rtol=1e-6)
        np.testing.assert_array_equal(read[name].label, csv.label)
    # A saved DatasetDict's splits are pooled (the run splits with its own seed): same rows, another order.
    saved = read["dir"]
    assert sorted(map(tuple, saved.features.round(5))) == sorted(map(tuple, csv.features.round(5)))


def test_text_and_filter_columns(files):
    src = _source(path=str(files["csv"]), label_column="kind", text_column="note", filter_column="site", filter_values=("b",))
    rows = read_rows(load_table(src), src)
    assert rows.input_kind == "text" and len(rows.text) == 20 and all(t.startswith("row ") for t in rows.text)
    assert set(rows.row % 2) == {1}  # site "b" is every odd row
    assert rows.label_names == ["eggs", "ham", "spam"]  # classes come from the whole table


def test_a_hub_dataset_is_read_through_load_dataset(tmp_path):
    """The hub path's own code, on a local folder laid out as a hub repository."""
    import pandas as pd

    repo = tmp_path / "user-dataset"
    (repo / "data").mkdir(parents=True)
    frame = pd.DataFrame(_table_rows(30))
    frame.iloc[:20].to_csv(repo / "data" / "train.csv", index=False)
    frame.iloc[20:].to_csv(repo / "data" / "test.csv", index=False)
    src = _source(hub=str(repo), hub_split="test", label_column="kind", text_column="note")
    rows = read_rows(load_table(src), src)
    assert len(rows.text) == 10 and rows.text[0] == frame.note[20]
    # A folder laid out like a hub repository is keyed on its content: an edited file is new data.
    before = source_fingerprint(src)
    assert before.startswith("file:")
    frame.iloc[20:].assign(note="edited").to_csv(repo / "data" / "test.csv", index=False)
    assert source_fingerprint(src) != before


def test_a_hub_dataset_by_name_is_pinned_to_a_commit():
    from tasks.real_data import resolve_source

    sha = "fedcba9876543210fedcba9876543210fedcba98"
    pinned, fingerprint = resolve_source(_source(hub="someone/reviews", hub_config="en", revision=sha))
    assert pinned.revision == sha and fingerprint == f"hub:someone/reviews:en:train@{sha}"
    with pytest.raises(DataError, match=r"source.hub: the hub dataset 'someone/reviews' cannot be reached \(HF_HUB_OFFLINE"):
        resolve_source(_source(hub="someone/reviews", revision="v2"))  # a branch or tag must be asked for its commit


def test_an_unreachable_hub_dataset_is_one_clear_line():
    src = _source(hub="no-such-user/no-such-dataset-w2s")
    with pytest.raises(DataError) as e:
        load_table(src)
    message = str(e.value)
    assert "source.hub" in message and "no-such-user/no-such-dataset-w2s" in message and "source.path=DIR" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "edit, kwargs, names",
    [
        (None, {"label_column": "target"}, "'target'"),
        (None, {"label_column": "kind", "filter_column": "site", "filter_values": ("z",)}, "source.filter_values"),
        (lambda f: f.assign(kind="ham"), {"label_column": "kind"}, "one class only"),
        (lambda f: f.assign(**{"Sepal Len": np.nan}), {"label_column": "kind"}, "'Sepal Len'"),
        (lambda f: f.assign(note=""), {"label_column": "kind", "text_column": "note"}, "'note'"),
        (None, {"label_column": "kind", "feature_columns": ("note",)}, "'note' is not numeric"),
    ],
)
def test_bad_data_names_the_column(tmp_path, edit, kwargs, names):
    import pandas as pd

    frame = pd.DataFrame(_table_rows())
    if edit is not None:
        frame = edit(frame)
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    src = _source(path=str(path), **kwargs)
    with pytest.raises(DataError, match=names.replace("(", r"\(")):
        read_rows(load_table(src), src)


def test_missing_and_unsupported_files_are_named(tmp_path):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="nowhere.csv does not exist"):
        _source(path=str(tmp_path / "nowhere.csv"))
    gone = tmp_path / "gone.csv"  # deleted after the config was read
    gone.write_text("a,b\n1,2\n")
    source = _source(path=str(gone))
    gone.unlink()
    with pytest.raises(DataError, match="gone.csv does not exist"):
        source_fingerprint(source)
    odd = tmp_path / "table.xlsx"
    odd.write_text("x")
    with pytest.raises(DataError, match="table.xlsx is not a CSV"):
        load_table(_source(path=str(odd)))


def test_the_fingerprint_follows_the_file_content(files):
    src = _source(path=str(files["csv"]))
    before = source_fingerprint(src)
    assert source_fingerprint(src) == before
    files["csv"].write_text(files["csv"].read_text().replace("ham", "jam"))
    assert source_fingerprint(src) != before


def test_stratified_split_keeps_each_class_share_and_is_seeded():
    labels = np.repeat([0, 1, 2], [300, 90, 30])
    parts = stratified_split(labels, SHARES, np.random.default_rng(3))
    every = np.concatenate(list(parts.values()))
    assert sorted(every) == list(range(len(labels)))  # a partition
    for name, share in SHARES.items():
        counts = np.bincount(labels[parts[name]], minlength=3)
        np.testing.assert_allclose(counts, np.array([300, 90, 30]) * share / 7.5, atol=1)
    again = stratified_split(labels, SHARES, np.random.default_rng(3))
    assert all(np.array_equal(parts[n], again[n]) for n in SHARES)
    assert not np.array_equal(parts["test"], stratified_split(labels, SHARES, np.random.default_rng(4))["test"])


def test_undersampling_balances_the_classes():
    labels = np.repeat([0, 1, 2], [50, 20, 7])
    keep = undersample(labels, np.random.default_rng(0))
    assert np.bincount(labels[keep]).tolist() == [7, 7, 7] and len(set(keep)) == 21


def test_bag_of_words_is_hashed_consistently_and_unit_length():
    x = hashed_bag_of_words(["The cat", "the CAT sat", "dog"], 64)
    assert x.shape == (3, 64)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-6)
    shared = (x[0] > 0) & (x[1] > 0)
    assert shared.sum() == 2 and (x[2] > 0).sum() == 1  # "the", "cat" in both; "dog" alone


def test_average_pool_by_hand():
    image = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
    np.testing.assert_allclose(average_pool(image, 2), [[2.5, 4.5, 10.5, 12.5]])


def test_sources_from_different_files_must_name_the_same_classes():
    from tasks.artifacts import SourceSplits
    from tasks.make_splits import check_same_classes

    def split(source, names):
        facts = {"source": source, "label_names": names, "n_classes": 2, "sizes": {"w2s_train": 10}}
        return SourceSplits(stage="make_splits", key=source, path="", fingerprint="", facts=facts)

    check_same_classes([split("a", ["no", "yes"]), split("b", ["no", "yes"])])
    with pytest.raises(DataError, match="source 'b' has classes \\['neg', 'pos'\\]"):
        check_same_classes([split("a", ["no", "yes"]), split("b", ["neg", "pos"])])
