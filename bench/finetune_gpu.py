"""Fine-tuning throughput: the student's fine-tuning path against a plain PyTorch loop, on one GPU.

    python bench/finetune_gpu.py                  # a GPU: GPT-2 small's shape, bf16 and fp32 (< 8 min on one GPU)
    python bench/finetune_gpu.py --arch gpt2-medium
    python bench/finetune_gpu.py --tiny           # any machine: a tiny GPT-2 on the CPU, fp32 (chosen without a GPU)

Both sides fine-tune the same decoder LM (built from the architecture's published shape with
random weights and saved to a temporary folder: throughput does not depend on the weights,
and no weights can be downloaded where this runs) with a linear head on its last real token,
on the same token ids (right-padded, lengths spread over the context), targets, batch size,
batch order, optimiser (AdamW) and precision, in one process, alternating so that machine
noise hits both:

- ``path``: ``models.finetune.finetune_classifier``, what the pipeline's strong stages call
  (Lightning on ``accelerator="auto"``, its precision plugin, deterministic seeding);
- ``plain``: a hand-written loop: ``AutoModel`` + ``nn.Linear``, ``torch.autocast`` for bf16.

Each side is timed from loading the model to the end of training (both load the same
folder); samples/s = points × epochs / seconds. On a GPU each side's peak allocated memory
is read with ``torch.cuda.max_memory_allocated``. Results go to
``bench/results/finetune_gpu.json`` (GPU) or ``bench/results/finetune_gpu_cpu.json`` (CPU).
"""

from __future__ import annotations

import argparse
import contextlib
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

# Published GPT-2 shapes (n_embd, n_layer, n_head); vocabulary 50257, context 1024.
ARCHS = {
    "gpt2": (768, 12, 12),
    "gpt2-medium": (1024, 24, 16),
    "gpt2-large": (1280, 36, 20),
    "tiny": (128, 2, 4),
}


def build_model(arch: str, folder: Path) -> dict:
    import torch
    from transformers import GPT2Config, GPT2Model

    width, layers, heads = ARCHS[arch]
    vocab = 50257 if arch != "tiny" else 1000
    torch.manual_seed(0)
    model = GPT2Model(GPT2Config(vocab_size=vocab, n_embd=width, n_layer=layers, n_head=heads, n_positions=1024))
    model.save_pretrained(folder)
    return {"arch": arch, "n_embd": width, "n_layer": layers, "n_head": heads, "vocab_size": vocab,
            "parameters": sum(p.numel() for p in model.parameters())}


def make_data(n: int, seq_len: int, vocab: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    lengths = rng.integers(seq_len // 4, seq_len + 1, size=n)
    ids = rng.integers(0, vocab, size=(n, seq_len)).astype(np.int64)
    mask = (np.arange(seq_len)[None, :] < lengths[:, None]).astype(np.int64)
    ids[mask == 0] = 0  # right padding
    labels = rng.integers(0, 2, size=n)
    targets = np.eye(2, dtype=np.float32)[labels]
    return {"input_ids": ids, "attention_mask": mask}, targets


def path_fit(folder: str, spec, inputs, targets) -> None:
    from models.finetune import finetune_classifier

    result = finetune_classifier(folder, spec, inputs, targets, None, None, seed=0)
    assert all(h["train_loss"] == h["train_loss"] for h in result.history)  # no NaN


def plain_fit(folder: str, spec, inputs, targets, precision: str, device) -> None:
    import torch
    from torch import nn
    from transformers import AutoModel

    torch.use_deterministic_algorithms(False)  # the path's Trainer turns it on process-wide
    torch.manual_seed(0)
    model = AutoModel.from_pretrained(folder).to(device).train()
    head = nn.Linear(model.config.hidden_size, targets.shape[1]).to(device)
    params = [*model.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW(params, lr=spec.lr, weight_decay=spec.weight_decay)
    ids, mask = torch.as_tensor(inputs["input_ids"]), torch.as_tensor(inputs["attention_mask"])
    y = torch.as_tensor(targets)
    generator = torch.Generator().manual_seed(0)
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16-mixed" else contextlib.nullcontext()
    )
    n = len(y)
    for _ in range(spec.epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, spec.batch_size):
            idx = order[start : start + spec.batch_size]
            lengths = mask[idx].sum(dim=1)
            width = int(lengths.max())
            b_ids, b_mask = ids[idx, :width].to(device), mask[idx, :width].to(device)
            with autocast:
                states = model(input_ids=b_ids, attention_mask=b_mask).last_hidden_state
                logits = head(states[torch.arange(len(idx), device=device), lengths.to(device) - 1])
            loss = -(y[idx].to(device) * torch.log_softmax(logits.float(), dim=-1)).sum(dim=-1).mean()
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    assert torch.isfinite(loss)


def measure(fn, device) -> tuple[float, float | None]:
    import gc

    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None
    return seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a tiny GPT-2 on the CPU (the default without a GPU)")
    parser.add_argument("--arch", choices=[a for a in ARCHS if a != "tiny"], default="gpt2")
    parser.add_argument("--n", type=int, default=None, help="training points (default 2048 on a GPU, 512 tiny)")
    parser.add_argument("--seq-len", type=int, default=None, help="longest text in tokens (default 128, 64 tiny)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budget-s", type=float, default=420, help="stop repeating once this much time is spent")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch (tiny default: 1)")
    args = parser.parse_args()

    import torch

    from models.finetune import FinetuneSpec

    started = time.perf_counter()
    on_gpu = torch.cuda.is_available() and not args.tiny
    arch = args.arch if on_gpu else "tiny"
    device = torch.device("cuda" if on_gpu else "cpu")
    if not on_gpu:
        # Models this small gain nothing from a second intra-op thread on a shared machine.
        torch.set_num_threads(args.threads or 1)
    n = args.n or (2048 if on_gpu else 512)
    seq_len = args.seq_len or (128 if on_gpu else 64)
    precisions = ["bf16-mixed", "32-true"] if on_gpu and torch.cuda.is_bf16_supported() else ["32-true"]

    folder = Path(tempfile.mkdtemp(prefix="w2s-finetune-bench-"))
    model_facts = build_model(arch, folder)
    inputs, targets = make_data(n, seq_len, model_facts["vocab_size"])
    results = {}
    for precision in precisions:
        spec = FinetuneSpec(epochs=args.epochs, lr=5e-5, batch_size=args.batch_size, precision=precision,
                            accelerator="gpu" if on_gpu else "cpu", patience=args.epochs)
        sides = {
            "path": lambda: path_fit(str(folder), spec, inputs, targets),
            "plain": lambda: plain_fit(str(folder), spec, inputs, targets, precision, device),
        }
        for fn in sides.values():  # warm-up: first calls pay one-off initialisation (kernels, allocator)
            fn()
        seconds = {k: [] for k in sides}
        peaks = {k: [] for k in sides}
        # Each precision gets an equal share of what is left of the budget; at least one pair runs.
        share = (args.budget_s - (time.perf_counter() - started)) / (len(precisions) - precisions.index(precision))
        share_start = time.perf_counter()
        for _ in range(args.repeats):
            pair_start = time.perf_counter()
            for name, fn in sides.items():
                s, peak = measure(fn, device)
                seconds[name].append(s)
                peaks[name].append(peak)
            now = time.perf_counter()
            if now - share_start + (now - pair_start) > share:
                break
        rate = {k: [round(n * args.epochs / s, 1) for s in v] for k, v in seconds.items()}
        results[precision] = {
            "path_samples_per_s": rate["path"],
            "plain_samples_per_s": rate["plain"],
            "path_over_plain": round(statistics.median(rate["path"]) / statistics.median(rate["plain"]), 3),
            "path_seconds": [round(s, 3) for s in seconds["path"]],
            "plain_seconds": [round(s, 3) for s in seconds["plain"]],
            "peak_gpu_mem_mib": {k: (round(max(v), 1) if v[0] is not None else None) for k, v in peaks.items()},
        }
    report = {
        "device": torch.cuda.get_device_name(0) if on_gpu else "cpu",
        "mode": "gpu" if on_gpu else "tiny-cpu",
        "note": None if on_gpu else "CPU run of the tiny model: exercises the benchmark; its figures say nothing about a GPU",
        "model": model_facts,
        "setting": {"n_train": n, "max_tokens": seq_len, "batch_size": args.batch_size, "epochs": args.epochs,
                    "optimizer": "AdamW lr 5e-5 wd 0.01", "torch_threads": torch.get_num_threads(),
                    "repeats_run": len(next(iter(results.values()))["path_seconds"])},
        "results": results,
        "target": "path_over_plain >= 0.9",
        "machine": machine(),
        # Other work on a shared machine slows every figure here: its load, as the run ended.
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "torch": torch.__version__,
        "command": "python bench/finetune_gpu.py " + " ".join(sys.argv[1:]),
        "seconds": round(time.perf_counter() - started, 1),
    }
    if len(results) == 2:
        bf16, fp32 = results["bf16-mixed"], results["32-true"]
        speed = statistics.median(bf16["path_samples_per_s"]) / statistics.median(fp32["path_samples_per_s"])
        report["bf16_over_fp32"] = {
            "path_samples_per_s": round(speed, 3),
            "path_peak_mem": round(bf16["peak_gpu_mem_mib"]["path"] / fp32["peak_gpu_mem_mib"]["path"], 3),
        }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / ("finetune_gpu.json" if on_gpu else "finetune_gpu_cpu.json")
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
