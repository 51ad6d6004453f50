"""The cached-stage wrapper on its own: atomic artifacts, content-addressed reuse."""

import pytest

from tasks.manifest import Manifest, fingerprint_dir
from tasks.stage import StageOutput, cached_stage
from tasks.workspace import artifacts_root, prefect_results

pytestmark = pytest.mark.usefixtures("prefect_harness")


@cached_stage(Manifest)
def write_then_fail(out: StageOutput, value: int) -> None:
    out.path("half.txt").write_text("partial")
    raise ValueError(f"bad value {value}")


@cached_stage(Manifest)
def write_square(out: StageOutput, value: int) -> None:
    out.path("square.txt").write_text(str(value * value))
    out.facts["square"] = value * value


def _call(stage, **kwargs):
    return stage.with_options(result_storage=prefect_results())(**kwargs, return_state=True)


def test_a_failed_stage_leaves_no_folder_and_no_cache_record():
    state = _call(write_then_fail, value=3)
    assert state.is_failed()
    with pytest.raises(ValueError, match="bad value 3"):
        state.result()
    folder = artifacts_root() / "write_then_fail"
    assert not folder.exists() or list(folder.iterdir()) == []
    again = _call(write_then_fail, value=3)  # no record was cached: it runs (and fails) again
    assert again.is_failed() and again.name != "Cached"


def test_a_stage_is_keyed_on_its_inputs_and_reused():
    first = _call(write_square, value=7)
    manifest = first.result()
    assert first.name != "Cached" and manifest.facts["square"] == 49
    assert manifest.file("square.txt").read_text() == "49"
    assert manifest.fingerprint == fingerprint_dir(manifest.dir)
    second = _call(write_square, value=7)
    assert second.name == "Cached" and second.result() == manifest
    other = _call(write_square, value=8).result()
    assert other.key != manifest.key and other.dir != manifest.dir
