"""Stage ``weak_label``: the weak model's soft labels for every source's pool and for ``val``."""

from __future__ import annotations

from tasks.data import load_split, save_array
from tasks.manifest import Manifest
from tasks.stage import StageOutput, cached_stage


@cached_stage
def weak_label(out: StageOutput, weak: Manifest, sources: list[Manifest]) -> None:
    from models.training import load_classifier, predict_probs

    net = load_classifier(weak.file("model"))
    for i, source in enumerate(sources):
        pool = load_split([source], "w2s_train")
        save_array(out.dir, f"pool_probs_{i}", predict_probs(net, pool.x_weak))
    val = load_split(sources, "val")
    save_array(out.dir, "val_probs", predict_probs(net, val.x_weak))
    out.facts["pool_sizes"] = [int(s.facts["sizes"]["w2s_train"]) for s in sources]
