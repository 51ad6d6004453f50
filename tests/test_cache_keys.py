"""Manifests, content fingerprints and code fingerprints: the pieces of every cache key."""

from pathlib import Path

from flows.config import load_config
from tasks.code_fingerprint import code_dependencies, code_fingerprint
from tasks.manifest import Manifest, canonical, fingerprint_dir, hash_json
from tasks.stage import stage_key


def _manifest(path="a", fingerprint="f1"):
    return Manifest(stage="ingest", key="k", path=path, fingerprint=fingerprint)


def test_manifests_count_by_content_not_by_path():
    assert hash_json([_manifest("a")]) == hash_json([_manifest("elsewhere")])
    assert hash_json([_manifest(fingerprint="f1")]) != hash_json([_manifest(fingerprint="f2")])
    assert canonical({"b": 1, "a": (2, 3)}) == {"a": [2, 3], "b": 1}


def test_stage_key_follows_its_config_slice_only():
    base, method = load_config(), load_config(None, ["method=overlap_only"])
    assert stage_key("train_weak", "TrainedModel", "tasks.train_weak", {"weak": base.weak}) == stage_key(
        "train_weak", "TrainedModel", "tasks.train_weak", {"weak": method.weak}
    )
    strong_key = lambda c: stage_key(  # noqa: E731
        "train_strong", "Student", "tasks.train_strong", {"strong": c.strong, "method": c.method_params}
    )
    assert strong_key(base) != strong_key(method)
    # Only the chosen method's parameters reach its stage, settled for the data: csl's auto
    # levels key the same as the levels they settle to.
    aux, aux_tuned = load_config(None, ["method=aux_conf"]), load_config(None, ["method=aux_conf", "method.alpha_max=0.5"])
    assert strong_key(aux) != strong_key(aux_tuned)
    auto, explicit = load_config(None, ["method=csl"]), load_config(None, ["method=csl", "method.by=sources", "method.teachers=[1,3]"])
    assert strong_key(auto) == strong_key(explicit)
    assert canonical(aux_tuned.method_params) == {"name": "aux_conf", "alpha_max": 0.5, "warmup": 0.2}


def test_code_fingerprint_follows_imports_into_models():
    strong = code_dependencies("tasks.train_strong")
    assert {"tasks.train_strong", "tasks.fitting", "tasks.data", "models.training", "models.losses"} <= set(strong)
    assert "models.overlap" not in strong
    ingest = code_dependencies("tasks.ingest")
    assert "models.synthetic" in ingest and "models.training" not in ingest
    assert "tasks.stage" not in ingest  # bookkeeping does not invalidate results
    # Nor do the config types: a key holds the values of the slices a stage reads.
    assert "tasks.specs" not in ingest and "tasks.specs" not in strong
    assert "tasks.artifacts" in strong  # how artifacts are laid out does change results' meaning
    assert "tasks.real_data" not in ingest  # imported by tasks.artifacts for annotations only (TYPE_CHECKING)
    assert code_fingerprint("tasks.ingest") != code_fingerprint("tasks.train_strong")


def test_directory_fingerprint_sees_content_and_ignores_datasets_random_state(tmp_path: Path):
    (tmp_path / "a.bin").write_bytes(b"abc")
    (tmp_path / "state.json").write_text('{"_fingerprint": "random-1"}')
    first = fingerprint_dir(tmp_path)
    (tmp_path / "state.json").write_text('{"_fingerprint": "random-2"}')
    assert fingerprint_dir(tmp_path) == first
    (tmp_path / "a.bin").write_bytes(b"abd")
    assert fingerprint_dir(tmp_path) != first


def test_the_selection_key_holds_only_what_its_policy_reads():
    def key(*overrides):
        selection = load_config(None, list(overrides)).selection.as_read()
        return stage_key("select_sources", "Selection", "tasks.select_sources", {"selection": selection})

    assert key("selection.epsilon=0.3") == key()  # ucb1 does not read epsilon
    assert key("selection.policy=epsilon_greedy", "selection.epsilon=0.3") != key("selection.policy=epsilon_greedy")
    assert key("selection.policy=paper_ucb", "selection.unit=pulls") == key("selection.policy=paper_ucb")
    assert key("selection.unit=pulls") != key()


def test_a_stage_refuses_a_manifest_of_another_kind():
    """Two manifests swapped in a call fail at once, naming the parameter and the kinds."""
    import pytest

    from tasks.artifacts import WeakLabels
    from tasks.weak_label import weak_label

    labels = WeakLabels(stage="weak_label", key="k", path="p", fingerprint="f")
    with pytest.raises(TypeError, match="weak_label: weak takes TrainedModel, got a WeakLabels"):
        weak_label.fn(weak=labels, sources=[])


def test_every_training_stage_follows_the_code_that_builds_its_fit_recipe():
    # The recipe is built from the config (bookkeeping) by models.head: a stage that trains
    # must see that module, or an edit to it would hand back stale fits.
    for stage in ("train_weak", "train_ceiling", "train_strong", "train_teachers", "train_grid", "train_round_students"):
        assert "models.head" in code_dependencies(f"tasks.{stage}"), stage
    assert "models.progress" not in code_dependencies("tasks.train_strong")  # display only
