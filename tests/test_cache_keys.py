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
    assert stage_key("train_weak", "tasks.train_weak", {"weak": base.weak}) == stage_key(
        "train_weak", "tasks.train_weak", {"weak": method.weak}
    )
    strong_key = lambda c: stage_key(  # noqa: E731
        "train_strong", "tasks.train_strong", {"strong": c.strong, "method": c.method, "params": c.method_params}
    )
    assert strong_key(base) != strong_key(method)
    # Only the chosen method's parameters reach its stage: another method's do not matter.
    tuned_other = load_config(None, ["methods.aux_conf.alpha_max=0.5"])
    assert strong_key(tuned_other) == strong_key(base)
    aux, aux_tuned = load_config(None, ["method=aux_conf"]), load_config(None, ["method=aux_conf", "methods.aux_conf.alpha_max=0.5"])
    assert strong_key(aux) != strong_key(aux_tuned)


def test_code_fingerprint_follows_imports_into_models():
    strong = code_dependencies("tasks.train_strong")
    assert {"tasks.train_strong", "tasks.fitting", "tasks.data", "models.training", "models.losses"} <= set(strong)
    assert "models.overlap" not in strong
    ingest = code_dependencies("tasks.ingest")
    assert "models.synthetic" in ingest and "models.training" not in ingest
    assert "tasks.stage" not in ingest  # bookkeeping does not invalidate results
    assert code_fingerprint("tasks.ingest") != code_fingerprint("tasks.train_strong")


def test_directory_fingerprint_sees_content_and_ignores_datasets_random_state(tmp_path: Path):
    (tmp_path / "a.bin").write_bytes(b"abc")
    (tmp_path / "state.json").write_text('{"_fingerprint": "random-1"}')
    first = fingerprint_dir(tmp_path)
    (tmp_path / "state.json").write_text('{"_fingerprint": "random-2"}')
    assert fingerprint_dir(tmp_path) == first
    (tmp_path / "a.bin").write_bytes(b"abd")
    assert fingerprint_dir(tmp_path) != first
