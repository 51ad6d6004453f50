"""bench/faults.py's damaged-cache and concurrency scenarios on real runs of ``w2s`` (the
others are in test_faults.py: two files, so that two test workers share the scenarios)."""

import pytest
from test_faults import run_scenario


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["damaged_cache", "four_concurrent_runs"])
def test_fault_scenario_recovers_and_loses_nothing(tmp_path, scenario):
    run_scenario(tmp_path, scenario)
