"""Embedding throughput of the ``embed`` stage against sentence-transformers, in one run.

    .venv/bin/python bench/embed.py [--texts 2706] [--batch-size 64] [--repeats 3]

Both sides encode the same texts (the bundled UCLA course titles) with the same model (the
bundled all-MiniLM-L6-v2) and batch size, in one process, alternating so that machine noise
hits both:

- ``sentence-transformers``: ``SentenceTransformer.encode`` (the model loaded beforehand);
- ``embed`` stage: the pipeline's stage run inside a Prefect flow on an empty cache, timed
  as the stage's wall time (loading the model, reading the rows and writing the features
  included), and its pure encoding rate as recorded by the stage.

Then the stage is run again: it must be a cache hit. Results go to bench/results/embed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, ROOT, machine  # noqa: E402

sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=2706, help="at most this many of the 2,706 titles")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="w2s-embed-bench-"))
    os.environ.update(W2S_HOME=str(work / "home"), PREFECT_HOME=str(work / "prefect"), HF_HUB_OFFLINE="1",
                      PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_LOGGING_LEVEL="WARNING")
    from prefect import flow
    from sentence_transformers import SentenceTransformer

    from flows.config import load_config
    from flows.runner import StageRunner
    from models.backbone_names import resolve_backbone
    from tasks.embed import backbone_fingerprint, embed
    from tasks.ingest_dataset import ingest_dataset
    from tasks.real_data import source_fingerprint
    from tasks.stage import RunContext

    config = load_config(None, ["source=ucla_courses", f"source.max_rows={args.texts}", f"strong.backbone.batch_size={args.batch_size}"])
    source, encoder = config.data.sources[0], config.backbone.encoder

    @flow(name="embed-bench")
    def run_embed(refresh: bool = False) -> dict:
        # A refresh recomputes the stage however warm its cache: a run on an empty cache.
        stage = StageRunner(RunContext(), frozenset({"embed"} if refresh else ()))
        rows = stage(ingest_dataset, source, source_fingerprint(source))
        features = stage(embed, encoder, backbone_fingerprint(encoder.name), rows)
        return {"rows": rows, "features": features, "record": stage.records["embed"]}

    first = run_embed()  # reads the data (not timed)
    texts = _texts(first["rows"])
    model = SentenceTransformer(resolve_backbone(encoder.name).path, device="cpu")
    model.max_seq_length = encoder.max_length

    st_rates, stage_rates, stage_walls = [], [], []
    for i in range(args.repeats):
        start = time.perf_counter()
        model.encode(texts, batch_size=args.batch_size)
        st_rates.append(len(texts) / (time.perf_counter() - start))
        result = run_embed(refresh=True)
        assert not result["record"]["cached"]
        stage_walls.append(result["record"]["seconds"])
        stage_rates.append(result["features"].facts["items_per_second"])
    again = run_embed()

    st = statistics.median(st_rates)
    report = {
        "texts": len(texts), "batch_size": args.batch_size, "repeats": args.repeats, "model": "all-MiniLM-L6-v2 (bundled)",
        "sentence_transformers_texts_per_s": [round(r, 1) for r in st_rates],
        "embed_stage_encode_texts_per_s": stage_rates,
        "embed_stage_wall_s": stage_walls,
        "ratio_encode": round(statistics.median(stage_rates) / st, 3),
        "ratio_stage_wall": round(len(texts) / statistics.median(stage_walls) / st, 3),
        "second_run_cached": again["record"]["cached"],
        "second_run_embed_s": again["record"]["seconds"],
        "machine": machine(),
        "command": "python bench/embed.py " + " ".join(sys.argv[1:]),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "embed.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


def _texts(rows) -> list[str]:
    return list(rows.rows()[2])


if __name__ == "__main__":
    main()
