import pytest

from flows.config import ConfigError, ExperimentConfig, load_config


def test_defaults_declare_several_sources_of_different_density(small_config_path):
    c = load_config()
    assert len(c.data.sources) == 3
    assert len({s.counts.overlap / (s.counts.easy + s.counts.hard + s.counts.overlap) for s in c.data.sources}) == 3
    small = load_config(small_config_path)
    assert [s.name for s in small.data.sources] == ["low", "high"] and small.selection.rounds == 6


def test_overrides_reach_nested_and_list_keys():
    c = load_config(None, ["method=overlap_only", "data.sources.1.counts.overlap=7", "seed=4"])
    assert (c.method, c.data.sources[1].counts.overlap, c.seed) == ("overlap_only", 7, 4)
    assert c.fingerprint() != ExperimentConfig().fingerprint()


@pytest.mark.parametrize(
    "overrides, names",
    [
        (["strong.methd=xent"], "strong.methd"),
        (["nope=1"], "'nope'"),
        (["method=magic"], "method"),
        (["weak.C=-1"], "weak.C"),
        (["selection.rounds=abc"], "selection.rounds"),
        (["data.sources.9.name=x"], "data.sources.9"),
        (["selection.rounds=10000"], "budget"),
        (["data.sources.0.name=high"], "unique"),
        (["data.sources=[]"], "sources"),
        (["seed"], "key=value"),
    ],
)
def test_bad_keys_and_values_name_the_key(overrides, names):
    with pytest.raises(ConfigError, match=names.replace(".", r"\.").replace("[", r"\[")):
        load_config(None, overrides)


def test_config_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("strong:\n  mehtod: xent\n")
    with pytest.raises(ConfigError, match="unknown config key 'strong.mehtod'"):
        load_config(bad)
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(tmp_path / "list.yaml")


def test_csl_specialists_adapt_to_the_data():
    """Two classes and three sources: by auto settles on one specialist per source; eight
    classes: blocks of classes, 1, 2, 4; explicit settings are kept and checked."""
    default = load_config(None, ["method=csl"])
    assert (default.methods.csl.by, default.methods.csl.teachers) == ("auto", "auto")
    assert (default.method_params.by, default.method_params.teachers) == ("sources", (1, 3))
    blocks = load_config(None, ["method=csl", "data.sources=[{name: b, kind: class_blocks, n_classes: 8}]"])
    assert (blocks.method_params.by, blocks.method_params.teachers) == ("classes", (1, 2, 4))
    # explicit teachers that two classes can hold: by classes; more than the classes: by sources
    assert load_config(None, ["method=csl", "methods.csl.teachers=[1,2]"]).method_params.by == "classes"
    assert load_config(None, ["method=csl", "methods.csl.teachers=[1,3]"]).method_params.by == "sources"
    # a real dataset's classes are counted when it is read: by classes, 1, 2, 4
    text = load_config(None, ["source=ucla_courses", "method=csl"])
    assert (text.method_params.by, text.method_params.teachers) == ("classes", (1, 2, 4))
    # settled values are what the stage (and its cache key) sees: the same as writing them out
    explicit = load_config(None, ["method=csl", "methods.csl.by=sources", "methods.csl.teachers=[1,3]"])
    assert explicit.method_params == default.method_params


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["methods.csl.by=classes", "methods.csl.teachers=[1,2,4]"], "methods.csl.teachers: 4 teachers but the data has 2 classes"),
        (["methods.csl.by=sources", "methods.csl.teachers=[1,2]"], r"by=sources needs levels \(1, 3\)"),
        (["data.sources=[{name: a, counts: {easy: 9, hard: 9, overlap: 9}}]"], "methods.csl.by: auto finds no specialists"),
    ],
)
def test_csl_settings_the_data_cannot_hold_are_refused(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, ["method=csl", "selection.policy=all", *overrides])


def test_a_text_source_is_encoded_by_minilm_unless_told_otherwise():
    assert load_config(None, ["source=ucla_courses", "strong.backbone=null"]).strong.backbone.name == "minilm"
    assert load_config(None, ["source=ucla_courses", "strong.backbone.name=/some/encoder"]).strong.backbone.name == "/some/encoder"
    assert load_config(None, ["source=spam7"]).strong.backbone is None  # numeric: the raw columns
