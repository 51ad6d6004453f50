"""Faults on real runs of ``w2s`` (bench/faults.py's scenarios), and determinism; the damaged
cache and concurrency scenarios are in test_faults_concurrency.py (a file per test worker).

Each scenario kills, starves or crowds real processes on a real workspace and checks that
the workbench recovers with nothing lost; here each runs as the benchmark does, and its
report is read back.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import run_w2s

ROOT = Path(__file__).resolve().parent.parent
SMALL = Path(__file__).parent / "small.yaml"


@pytest.mark.slow
@pytest.mark.parametrize(
    "scenario", ["sigkill_mid_training", "transient_io_fault"]
)
def test_fault_scenario_recovers_and_loses_nothing(tmp_path, scenario):
    run_scenario(tmp_path, scenario)


def run_scenario(tmp_path, scenario):
    """bench/faults.py's ``scenario`` as the benchmark runs it; its report must say it passed."""
    report = tmp_path / "faults.json"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "faults.py"), "--only", scenario, "--out", str(report)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert report.is_file(), done.stderr[-2000:]
    [result] = json.loads(report.read_text())["scenarios"]
    assert result["passed"], result["error"]
    assert result["data_lost"] == 0 and done.returncode == 0


@pytest.mark.slow
def test_same_config_and_seed_give_identical_metrics_on_cpu(tmp_path):
    """Fresh workspaces, nothing cached: minibatch Adam on both models and the adaptive
    confidence loss, where any unseeded shuffle or initialisation would show."""
    stochastic = ["method=adapt_conf", "weak.optimizer=adam", "weak.batch_size=16", "weak.lr=0.01",
                  "strong.optimizer=adam", "strong.batch_size=16", "strong.lr=0.01", "strong.epochs=8"]
    results = {}
    for home, seed in (("a", 9106), ("b", 9106), ("c", 9107)):
        done = run_w2s(tmp_path / home, "run", str(SMALL), *stochastic, f"seed={seed}", "--json", timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        results[home] = json.loads(done.stdout)
    assert results["a"]["metrics"] == results["b"]["metrics"]  # exactly, every figure
    assert not any(s["cached"] for s in results["b"]["stages"].values())
    assert results["c"]["metrics"] != results["a"]["metrics"]  # the seed does reach the data and the training
