"""What the RCI ablations vary and measure: shared by the runs (:mod:`clipguard.eval.ablation`)
and their tables (:mod:`clipguard.eval.report`)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

ABLATIONS: tuple[str, ...] = ("modality", "teacher", "kd", "lambda")
MODALITIES: dict[str, str] = {"v": "V", "va": "V+A", "vt": "V+T", "vat": "V+A+T"}
KD_MODES: dict[str, str] = {
    "off": "no KD",
    "logits": "logits only",
    "embeddings": "embeddings only",
    "both": "logits + embeddings",
}
LAMBDAS: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0)
METRICS: dict[str, str] = {"ap": "AP", "f1": "F1", "r_at_p80": "R@P80"}
REASON_SUBSETS: dict[str, str] = {"reason_visual": "AP visual", "reason_audio": "AP audio", "reason_text": "AP text"}
SUBSET_METRICS: tuple[str, ...] = ("ap", "r_at_p80")
"""kept per subset (``<subset>.<metric>``) for every variant, e.g. ``heldout_edit/rotate.ap``"""
JSON_FILE = "ablations.json"
MARKDOWN_FILE = "ablations.md"


def mean_std(values: Sequence[float]) -> dict[str, Any]:
    """Mean and sample standard deviation (ddof=1; 0 for one value) of the finite values."""
    finite = [float(v) for v in values if v == v]
    if not finite:
        return {"mean": float("nan"), "std": float("nan"), "n": 0, "values": list(values)}
    std = statistics.stdev(finite) if len(finite) > 1 else 0.0
    return {"mean": statistics.fmean(finite), "std": std, "n": len(finite), "values": list(values)}
