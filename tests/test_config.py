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
