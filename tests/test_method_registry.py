"""Every method of the registry (models/methods/) from the command line, on the default
data, as a user picks one: a method added to the registry is covered here by its name.
One workspace for the module, so that the methods share every stage upstream of the
student through the cache."""

import json

import pytest
from cli_helpers import run_w2s

from models.methods import METHODS

pytestmark = pytest.mark.slow
DEFAULT_METHODS = ("xent", "xent_hard", "aux_conf", "adapt_conf", "csl")


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("methods") / "home"


@pytest.mark.parametrize("method", list(METHODS))
def test_every_registered_method_runs_from_the_command_line(home, method):
    done = run_w2s(home, "run", f"method={method}", "--json", timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["method"] == method
    # Better than chance on the default binary mixture (overlap_only: the overlap points alone).
    assert 0.5 < result["metrics"]["acc_w2s"] <= 1.0, result["metrics"]
    assert not result["stages"]["train_strong"]["cached"]


def test_a_sweep_of_the_default_methods_gives_five_different_students(home):
    """``w2s sweep`` over the default methods on the default data: one row each, and no
    two alike (aux_conf was xent's twin when early stopping chose an epoch before its
    warm-up ended; docs/methods.md)."""
    done = run_w2s(home, "sweep", f"method={','.join(DEFAULT_METHODS)}", "--json", timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["failed"] == []
    assert [c["axes"]["method"] for c in result["cells"]] == list(DEFAULT_METHODS)
    accuracy = {c["axes"]["method"]: c["acc_w2s"] for c in result["cells"]}
    assert len(set(accuracy.values())) == len(DEFAULT_METHODS), accuracy
