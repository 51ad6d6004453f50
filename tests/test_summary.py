"""The run summary's lines that warn about PGR and name each side's backbone."""

from flows.cli import format_summary


def _summary(metrics: dict, **result) -> str:
    m = {"acc_weak": 0.7, "acc_ceiling": 0.65, "acc_w2s": 0.75, "pgr": -1.0, "pgr_auroc": 0.4,
         "agreement": 0.8, "agreement_teacher_right": 0.9, "agreement_teacher_wrong": 0.3, **metrics}
    base = {"metrics": m, "method": "xent", "overlap": [], "stages": {}, "mlflow_run_id": "r",
            "selection": {"policy": "all", "points_per_source": {"data": 10}}}
    return format_summary({**base, **result})


def test_the_summary_says_which_gap_is_wrong():
    below = _summary({"gap_acc": -0.05, "gap_auroc": 0.05, "gap_negative": True, "gap_auroc_negative": False})
    assert "warning: ceiling below weak (accuracy by 0.050), PGR's sign is inverted" in below
    tiny = _summary({"gap_acc": -0.005, "gap_auroc": 0.05, "gap_too_small": True, "gap_negative": False})
    assert "warning: ceiling ≈ weak, PGR is unreliable" in tiny and "below" not in tiny
    fine = _summary({"gap_acc": 0.2, "gap_auroc": 0.2, "gap_too_small": False, "gap_negative": False})
    assert "warning" not in fine


def test_the_summary_names_each_sides_backbone():
    both = _summary({}, backbones={"weak": {"name": "minilm:2", "mode": "probe"},
                                   "strong": {"name": "minilm", "mode": "lora"}})
    assert "backbone   weak minilm:2 (frozen features, a head on top)" in both
    assert "backbone   strong minilm (LoRA adapters)" in both
    assert "backbone" not in _summary({}, backbones={})
