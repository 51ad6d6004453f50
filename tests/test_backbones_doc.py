"""docs/backbones.md's commands run as written, with tiny GPT-2 folders for the hub names."""

import re
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

DOC = Path(__file__).resolve().parent.parent / "docs" / "backbones.md"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), re.S)


def ladder_block() -> str:
    return re.search(r"<!-- ladder -->\n```python\n(.*?)```", DOC.read_text(), re.S).group(1)


def test_the_documented_imports_resolve():
    (imports,) = [b for b in blocks("python") if b != ladder_block()]
    namespace = {}
    exec(compile(imports, str(DOC), "exec"), namespace)
    assert callable(namespace["finetune_classifier"]) and callable(namespace["inspect_backbone"])


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_the_documented_w2s_run_fine_tunes_a_decoder_with_long_texts_dropped(tmp_path, tiny_decoder):
    from flows.config import load_config
    from flows.experiment import w2s_experiment
    from tasks import tracking

    (command,) = [b for b in blocks("bash") if b.startswith("w2s run source.path=")]
    args = shlex.split(command.replace("\\\n", " "))[2:]
    rng = np.random.default_rng(0)
    topics = {"sport": ["the match", "our team", "the coach"], "food": ["the soup", "this recipe", "the chef"]}
    rows = [{"text": f"{rng.choice(topics[t])} was great" + (" and everyone talked about it all week" if i % 4 == 0 else ""),
             "label": t} for i, t in enumerate(["sport", "food"] * 80)]
    csv = tmp_path / "my_texts.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    words = sorted({w for r in rows for w in r["text"].split()})
    # gpt2-large's stand-in: a 3-layer tiny GPT-2 cut to 2; its context is 64 tokens, not 1024.
    stand_in = f"{tiny_decoder('gpt2', words=words, layers=3)}:2"
    swap = {"source.path": str(csv), "backbone.name": stand_in, "backbone.max_length": "10"}
    args = [a if a.split("=")[0] not in swap else f"{a.split('=')[0]}={swap[a.split('=')[0]]}" for a in args]
    assert any(a == "backbone.drop_long=true" for a in args)
    result = w2s_experiment(load_config(None, args))

    too_long = sum(len(r["text"].split()) >= 10 for r in rows)
    assert too_long == 40
    c = tracking.client()
    experiment = c.get_run(result["mlflow_run_id"]).info.experiment_id

    def metrics(stage):
        query = f"tags.mlflow.parentRunId = '{result['mlflow_run_id']}' and tags.`w2s.stage` = '{stage}'"
        (run,) = c.search_runs([experiment], query)
        return run.data.metrics

    assert metrics("embed")["texts_too_long"] == too_long and metrics("embed")["dim"] == 32
    assert metrics("make_splits")["dropped_long"] == too_long
    assert 0 <= metrics("train_ceiling")["test_acc"] <= 1 and not result["stages"]["train_strong"]["cached"]


@pytest.mark.slow
def test_the_documented_ladder_runs_and_reports_pgr_for_each_pair(tiny_decoder, capsys):
    code = ladder_block()
    for name, layers in (("gpt2-medium", 3), ("gpt2-large", 4), ("gpt2", 2)):  # longest names first
        code = code.replace(f'"{name}"', repr(str(tiny_decoder("gpt2", layers=layers))))
    assert "gpt2" not in code.replace("tiny-gpt2", "")
    rng = np.random.default_rng(0)
    texts, labels = {}, {}
    for split, n in (("weak_train", 32), ("w2s_train", 32), ("test", 32)):
        labels[split] = np.arange(n) % 2
        texts[split] = [" ".join([*rng.choice(["ban", "bas", "bat"], size=3), "good" if y else "bad"]) for y in labels[split]]
    namespace = {"texts": texts, "labels": labels}
    exec(compile(code, str(DOC), "exec"), namespace)
    results = namespace["results"]
    assert len(results) == 3  # (2, 3), (2, 4), (3, 4) layers
    for r in results.values():
        assert set(r) == {"weak", "ceiling", "w2s", "pgr"} and 0 <= r["w2s"] <= 1
    assert "pgr" in capsys.readouterr().out
