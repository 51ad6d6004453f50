import pytest

from flows.config import ConfigError, ExperimentConfig, build_config, load_config


def test_defaults_declare_several_sources_of_different_density(small_config_path):
    c = load_config()
    assert len(c.data.sources) == 3
    assert len({s.counts.overlap / (s.counts.easy + s.counts.hard + s.counts.overlap) for s in c.data.sources}) == 3
    small = load_config(small_config_path)
    assert [s.name for s in small.data.sources] == ["low", "high"] and small.selection.rounds == 6


def test_overrides_reach_nested_and_list_keys():
    c = load_config(None, ["method=overlap_only", "data.sources.1.counts.overlap=7", "seed=4"])
    assert (c.method.name, c.data.sources[1].counts.overlap, c.seed) == ("overlap_only", 7, 4)
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
    assert (default.method.by, default.method.teachers) == ("auto", "auto")
    assert (default.method_params.by, default.method_params.teachers) == ("sources", (1, 3))
    blocks = load_config(None, ["method=csl", "data.sources=[{name: b, kind: class_blocks, n_classes: 8}]"])
    assert (blocks.method_params.by, blocks.method_params.teachers) == ("classes", (1, 2, 4))
    # explicit teachers that two classes can hold: by classes; more than the classes: by sources
    assert load_config(None, ["method=csl", "method.teachers=[1,2]"]).method_params.by == "classes"
    assert load_config(None, ["method=csl", "method.teachers=[1,3]"]).method_params.by == "sources"
    # a real dataset's classes are counted when it is read: by classes, 1, 2, 4
    text = load_config(None, ["source=ucla_courses", "method=csl"])
    assert (text.method_params.by, text.method_params.teachers) == ("classes", (1, 2, 4))
    # settled values are what the stage (and its cache key) sees: the same as writing them out
    explicit = load_config(None, ["method=csl", "method.by=sources", "method.teachers=[1,3]"])
    assert explicit.method_params == default.method_params


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["method.by=classes", "method.teachers=[1,2,4]"], "method.teachers: 4 teachers but the data has 2 classes"),
        (["method.by=sources", "method.teachers=[1,2]"], r"by=sources needs levels \(1, 3\)"),
        (["data.sources=[{name: a, counts: {easy: 9, hard: 9, overlap: 9}}]"], "method.by: auto finds no specialists"),
    ],
)
def test_csl_settings_the_data_cannot_hold_are_refused(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, ["method=csl", "selection.policy=all", *overrides])


def test_a_text_source_is_encoded_by_minilm_unless_told_otherwise():
    assert load_config(None, ["source=ucla_courses", "strong.backbone=null"]).strong.backbone.name == "minilm"
    assert load_config(None, ["source=ucla_courses", "strong.backbone.name=/some/encoder"]).strong.backbone.name == "/some/encoder"
    assert load_config(None, ["source=spam7"]).strong.backbone is None  # numeric: the raw columns


def test_a_method_is_chosen_by_name_at_its_defaults_and_tuned_by_its_parameters():
    from models.methods import METHODS

    for name, method in METHODS.items():  # every registered method is a config choice
        assert load_config(None, [f"method={name}"]).method == method.Params()
    aux = load_config(None, ["method=aux_conf", "method.alpha_max=0.5"]).method
    assert (aux.name, aux.alpha_max, aux.warmup) == ("aux_conf", 0.5, 0.2)
    # method=NAME applies first, wherever it stands: a parameter before it still lands
    assert load_config(None, ["method.alpha_max=0.5", "method=aux_conf"]).method == aux
    # a nested parameter of a method named on the command line
    boot = load_config(None, ["method=bootstrap", "method.intermediate.hidden=16"]).method
    assert (boot.intermediate.arch, boot.intermediate.hidden, boot.intermediate.C) == ("mlp", 16, 0.1)
    # another method named replaces the whole section, parameters and all
    tuned = {"method": {"name": "aux_conf", "alpha_max": 0.5}}
    assert build_config([tuned], ["method=xent"]).method == METHODS["xent"].Params()
    assert build_config([tuned, {"method": "adapt_conf"}]).method == METHODS["adapt_conf"].Params()
    assert build_config([tuned, {"method": {"warmup": 0.1}}]).method.model_dump() == {"name": "aux_conf", "alpha_max": 0.5, "warmup": 0.1}


def test_a_yaml_method_is_a_name_or_a_mapping_with_its_name(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("method: adapt_conf\n")
    assert load_config(path).method.tau == 0.5
    path.write_text("method: {name: adapt_conf, tau: 0.25}\n")
    assert load_config(path).method.tau == 0.25
    assert load_config(path, ["method.T=2"]).method.model_dump() == {"name": "adapt_conf", "T": 2.0, "tau": 0.25, "beta_ramp": 0.25}
    # the config's YAML form reads back to the same config
    again = tmp_path / "again.yaml"
    again.write_text(load_config(path).to_yaml())
    assert load_config(again) == load_config(path)


@pytest.mark.parametrize(
    "overrides, yaml_text, message",
    [
        (["method.alpha_max=0.5"], None, r"method.alpha_max: xent has no parameter 'alpha_max' \(it has none\)"),
        (["method=aux_conf", "method.tau=1"], None, r"method.tau: aux_conf has no parameter 'tau' \(its parameters: alpha_max, warmup\)"),
        ([], "method: {name: csl, alpha_max: 0.5}", "method.alpha_max: csl has no parameter 'alpha_max'"),
        (["method=magic"], None, "method: Input should be one of 'xent', .*'csl' \\(got 'magic'\\)"),
        (["methods.aux_conf.alpha_max=0.5"], None,
         "methods.aux_conf.alpha_max: .* write method=aux_conf method.alpha_max=VALUE"),
        ([], "methods: {csl: {by: sources}}", r"methods.csl.by: .* write method=csl method.by=VALUE \(in YAML, method: \{name: csl, by: VALUE\}\)"),
        (["method=3"], None, r"^method: give a method's name, one of xent, .*csl \(got 3\)$"),
        ([], "method: [a]", r"^method: give a method's name, .* \(got \['a'\]\)$"),
        # A value no member of a union takes: the key as written, and what each member wanted.
        (["method=csl", "method.teachers=1,2"], None, r"^method.teachers: Input should be 'auto' or a valid tuple \(got '1,2'\)$"),
    ],
)
def test_a_parameter_the_method_lacks_and_old_method_keys_are_refused_in_one_line(tmp_path, overrides, yaml_text, message):
    path = None
    if yaml_text is not None:
        path = tmp_path / "c.yaml"
        path.write_text(yaml_text + "\n")
    with pytest.raises(ConfigError, match=message) as refused:
        load_config(path, overrides)
    assert "\n" not in str(refused.value)


def test_the_method_syntax_docs_show_is_the_config_it_describes():
    """Each command of docs/methods.md's block after ``<!-- method-syntax -->``, read into
    its config (a sweep: every cell's) as the command line reads it."""
    import re
    import shlex
    from pathlib import Path

    from flows.cli import _parser, _sweep_config

    page = (Path(__file__).resolve().parent.parent / "docs" / "methods.md").read_text()
    block = re.search(r"<!-- method-syntax -->\n```bash\n(.*?)```", page, re.S).group(1)
    commands = [shlex.split(line.split("#")[0]) for line in block.strip().splitlines()]
    methods = []
    for command in commands:
        args = _parser().parse_args(command[1:])
        if command[1] == "run":
            methods.append([load_config(None, args.items).method])
        else:
            sweep = _sweep_config(args)
            methods.append([sweep.cell(axes).method for axes in sweep.combinations()])
    assert methods[0][0].alpha_max == 0.75 and methods[1][0].alpha_max == 0.5
    assert (methods[2][0].by, methods[2][0].teachers) == ("sources", (1, 3))
    assert methods[3][0].intermediate.hidden == 16
    assert [m.name for m in methods[4]] == ["xent"] * 3 + ["aux_conf"] * 3 + ["product"] * 3
    assert [m.alpha_max for m in methods[5]] == [0.25, 0.5, 0.75]
