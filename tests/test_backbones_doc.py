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


def marked_command(marker: str) -> list[str]:
    """The one command of the bash block after ``<!-- marker -->``, split as a shell would."""
    block = re.search(rf"<!-- {marker} -->\n```bash\n(.*?)```", DOC.read_text(), re.S).group(1)
    return shlex.split(block.replace("\\\n", " "))


def ladder_command() -> list[str]:
    return marked_command("ladder")


def test_the_documented_imports_resolve():
    (imports,) = blocks("python")
    namespace = {}
    exec(compile(imports, str(DOC), "exec"), namespace)
    assert callable(namespace["finetune_classifier"]) and callable(namespace["inspect_backbone"])


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_a_side_named_by_its_backbone_runs_as_documented():
    """The by-name command: the bundled MiniLM cut to 2 layers teaches the whole MiniLM."""
    from flows.config import load_config
    from flows.experiment import w2s_experiment

    command = marked_command("by-name")
    assert command[:2] == ["w2s", "run"]
    result = w2s_experiment(load_config(None, command[2:]))
    assert result["backbones"] == {"weak": {"name": "minilm:2", "mode": "probe"}, "strong": {"name": "minilm", "mode": "probe"}}
    assert all(0 <= result["metrics"][k] <= 1 for k in ("acc_weak", "acc_ceiling", "acc_w2s"))


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_the_documented_w2s_run_fine_tunes_a_decoder_with_long_texts_dropped(tmp_path, tiny_decoder):
    from flows.config import load_config
    from flows.experiment import w2s_experiment
    from tasks import tracking

    args = marked_command("burns-run")[2:]
    rng = np.random.default_rng(0)
    topics = {"sport": ["the match", "our team", "the coach"], "food": ["the soup", "this recipe", "the chef"]}
    rows = [{"text": f"{rng.choice(topics[t])} was great" + (" and everyone talked about it all week" if i % 4 == 0 else ""),
             "label": t} for i, t in enumerate(["sport", "food"] * 80)]
    csv = tmp_path / "my_texts.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    words = sorted({w for r in rows for w in r["text"].split()})
    # gpt2's and gpt2-large's stand-ins: tiny GPT-2s, the large one cut to 2 of its 3 layers;
    # their context is 64 tokens, not 1024.
    stand_in = f"{tiny_decoder('gpt2', words=words, layers=3)}:2"
    swap = {"source.path": str(csv), "weak.backbone.name": str(tiny_decoder("gpt2", words=words, layers=1)),
            "strong.backbone.name": stand_in, "strong.backbone.max_length": "10"}
    args = [a if a.split("=")[0] not in swap else f"{a.split('=')[0]}={swap[a.split('=')[0]]}" for a in args]
    assert any(a == "strong.backbone.drop_long=true" for a in args)
    result = w2s_experiment(load_config(None, args))

    too_long = sum(len(r["text"].split()) >= 10 for r in rows)
    assert too_long == 40
    c = tracking.client()
    experiment = c.get_run(result["mlflow_run_id"]).info.experiment_id

    def metrics(stage, where=""):
        query = f"tags.mlflow.parentRunId = '{result['mlflow_run_id']}' and tags.`w2s.stage` = '{stage}'{where}"
        (run,) = c.search_runs([experiment], query)
        return run.data.metrics

    strong_embed = metrics("embed", f" and params.`backbone.name` = '{stand_in}'")  # the weak side has its own
    assert strong_embed["texts_too_long"] == too_long and strong_embed["dim"] == 32
    assert metrics("make_splits")["dropped_long"] == too_long
    assert 0 <= metrics("train_ceiling")["test_acc"] <= 1 and not result["stages"]["train_strong"]["cached"]


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_the_documented_ladder_runs_and_reports_pgr_for_each_pair(tmp_path, tiny_decoder):
    from flows.cli import _ladder_config
    from flows.ladder import ladder

    rng = np.random.default_rng(0)
    rows = [{"text": " ".join([*rng.choice(["ban", "bas", "bat"], size=3), "good" if i % 2 else "bad"]),
             "label": i % 2} for i in range(96)]
    csv = tmp_path / "my_texts.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    words = sorted({w for r in rows for w in r["text"].split()})
    stand_ins = {name: str(tiny_decoder("gpt2", words=words, layers=n)) for name, n in
                 (("gpt2", 2), ("gpt2-medium", 3), ("gpt2-large", 4))}
    command = ladder_command()
    assert command[:2] == ["w2s", "ladder"] and command[-2] == "--out"
    swap = {"models": ",".join(stand_ins.values()), "source.path": str(csv), "strong.backbone.max_length": "16"}
    items = [a if a.split("=")[0] not in swap else f"{a.split('=')[0]}={swap[a.split('=')[0]]}" for a in command[2:-2]]
    assert f"models={','.join(stand_ins.values())}" in items
    result = ladder(_ladder_config(items), str(tmp_path / "out"))
    assert {(c["weak"], c["strong"]) for c in result["cells"]} == {
        (stand_ins[a], stand_ins[b]) for a, b in (("gpt2", "gpt2-medium"), ("gpt2", "gpt2-large"), ("gpt2-medium", "gpt2-large"))
    }
    assert len(result["cells"]) == 9  # three pairs, three seeds
    assert all(0 <= c["acc_w2s"] <= 1 for c in result["cells"])
    assert {Path(p).name for p in result["written"]} == {"ladder.md", "ladder.png", "ladder.json"}
