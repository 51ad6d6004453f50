"""Sweeps: the grid's cells fan out on a task runner and share upstream stages through the cache."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from flows.cli import main, split_top_level
from flows.config import ConfigError, build_config
from flows.study_config import SweepConfig
from flows.sweep import run_sweep
from tasks import tracking

SMALL = yaml.safe_load((Path(__file__).parent / "small.yaml").read_text())
METHODS = ["xent", "xent_hard", "aux_conf", "adapt_conf"]


def _sweep(grid: dict, **spec) -> SweepConfig:
    return build_config([{"base": SMALL, "grid": grid, **spec}], schema=SweepConfig)


@pytest.fixture(scope="module")
def four_by_three(prefect_harness):
    # Seeds no other test uses, so that the weak model really is trained here.
    config = _sweep({"method": METHODS, "seed": [241, 242, 243]}, name="reuse-test", workers=3)
    return config, run_sweep(config)


def test_four_methods_three_seeds_train_the_weak_model_three_times(four_by_three):
    _, result = four_by_three
    assert not result["failed"] and len(result["cells"]) == 12
    stages = result["stages"]
    assert stages["train_weak"]["runs"] == 12 and stages["train_weak"]["computed"] == 3
    assert stages["train_ceiling"]["computed"] == 3 and stages["weak_label"]["computed"] == 3
    assert stages["train_strong"]["computed"] == 12  # one student per cell
    # MLflow agrees: three train_weak child runs under the sweep's cells, each computed once.
    c = tracking.client()
    sweep_run = c.get_run(result["mlflow_run_id"])
    weak_runs = c.search_runs(
        [sweep_run.info.experiment_id], "tags.`w2s.sweep` = 'reuse-test' and tags.`w2s.stage` = 'train_weak'"
    )
    assert len(weak_runs) == 3
    assert len({r.data.tags["w2s.cache_key"] for r in weak_runs}) == 3


def test_cells_are_tagged_nested_runs_and_the_table_aggregates_over_seeds(four_by_three):
    _, result = four_by_three
    c = tracking.client()
    cells = [c.get_run(cell["mlflow_run_id"]) for cell in result["cells"]]
    assert {r.data.tags["mlflow.parentRunId"] for r in cells} == {result["mlflow_run_id"]}
    assert {r.data.tags["w2s.grid.method"] for r in cells} == set(METHODS)
    assert {r.data.tags["w2s.cell"] for r in cells} == {f"method={m},seed={s}" for m in METHODS for s in (241, 242, 243)}
    table = result["table"]
    for method in METHODS:
        row = next(line for line in table.splitlines() if line.startswith(f"| {method} |"))
        accs = [cell["acc_w2s"] for cell in result["cells"] if cell["axes"]["method"] == method]
        mean = np.mean(accs)
        half = 4.303 * np.std(accs, ddof=1) / np.sqrt(3)  # t(0.975, 2 dof)
        assert "| 3 |" in row and f"{mean:.3f} ± {half:.3f}" in row


def test_a_failed_cell_is_reported_and_the_others_finish(prefect_harness, tmp_path, capsys):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(600, 4))
    frame = pd.DataFrame(x, columns=list("abcd")).assign(y=np.where(x[:, 0] + x[:, 1] > 0, "yes", "no"))
    frame.to_csv(tmp_path / "data.csv", index=False)
    code = main([
        "sweep", "source.label_column=y,no_such_column", f"source.path={tmp_path / 'data.csv'}",
        "data.weak_view.kind=columns", "data.weak_view.columns=[a]", "--json",
    ])
    printed = capsys.readouterr()
    assert code == 1  # the command says a cell failed ...
    assert "no_such_column" in printed.err.strip().splitlines()[-1]
    result = json.loads(printed.out)  # ... after the finished cell was reported
    assert [c["cell"] for c in result["cells"]] == ["source.label_column=y"]
    [failed] = result["failed"]
    assert failed["cell"] == "source.label_column=no_such_column" and "no_such_column" in failed["error"]
    assert "FAILED source.label_column=no_such_column" in result["table"]
    failed_runs = tracking.client().search_runs(
        [tracking.client().get_run(result["mlflow_run_id"]).info.experiment_id],
        "tags.`w2s.cell` = 'source.label_column=no_such_column' and attributes.status = 'FAILED'",
    )
    assert len(failed_runs) == 1


@pytest.mark.slow
def test_a_dask_sweep_on_a_local_cluster_shares_the_cache_and_matches_threads(four_by_three, tmp_path, monkeypatch):
    """Cells of seed 244 are computed in Dask worker processes; those of seed 241 are read from
    the threaded sweep's records; seed 244 computed again with threads, in an empty
    workspace, gives the same figures."""
    _, threaded = four_by_three
    grid = {"method": ["xent", "aux_conf"], "seed": [241, 244]}
    result = run_sweep(_sweep(grid, name="dask-test", runner="dask", workers=2))
    assert not result["failed"] and result["stages"]["train_weak"]["computed"] == 1  # seed 244's only
    by_cell = {c["cell"]: c["acc_w2s"] for c in threaded["cells"]}
    dask = {c["cell"]: c["acc_w2s"] for c in result["cells"]}
    assert all(dask[cell] == by_cell[cell] for cell in dask if "seed=241" in cell)
    monkeypatch.setenv("W2S_HOME", str(tmp_path / "elsewhere"))
    fresh = run_sweep(_sweep({"method": ["xent", "aux_conf"], "seed": [244]}, name="threads-fresh"))
    assert fresh["stages"]["train_weak"]["computed"] == 1
    assert {c["cell"]: c["acc_w2s"] for c in fresh["cells"]} == {k: v for k, v in dask.items() if "seed=244" in k}


def test_grid_items_split_on_top_level_commas_only():
    assert split_top_level("xent,aux_conf") == ["xent", "aux_conf"]
    assert split_top_level("[1,2],[1,3]") == ["[1,2]", "[1,3]"]
    assert split_top_level("0.5") == ["0.5"]


def test_an_empty_axis_is_refused():
    # A bad cell from the command line is a case of tests/test_cli.py's bad-input table.
    with pytest.raises(ConfigError, match="grid.seed"):
        _sweep({"seed": []})
