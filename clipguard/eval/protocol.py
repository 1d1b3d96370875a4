"""The evaluation protocol (the paper's metrics, §4.2) every scorer is judged by.

Score the validation pairs and the evaluated split; the F1 threshold is the one that
maximises F1 on validation and is applied unchanged to the evaluated split; AP and R@P80
need no threshold; AP carries a bootstrap CI and the 5%-copy-share view; per-subset metrics
follow :mod:`clipguard.eval.subsets`. Models (:mod:`clipguard.eval.evaluate`) and baselines
(:mod:`clipguard.eval.baselines`) both go through :func:`evaluate_scores`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clipguard.core.metrics import ap_bootstrap_ci, at_prevalence, val_test_metrics
from clipguard.eval.subsets import subset_masks, subset_metrics
from clipguard.training.data import read_corpus_info
from clipguard.training.student import VAL_SPLIT

__all__ = ["VAL_SPLIT", "evaluate_scores", "heldout_edit_types"]


def heldout_edit_types(root: str | Path) -> tuple[str, ...]:
    """The held-out edit families ``corpus.json`` declares (none without one)."""
    return tuple(read_corpus_info(root).get("edit_types", {}).get("heldout", ()))


def evaluate_scores(
    val_pairs: pd.DataFrame,
    val_scores: np.ndarray,
    pairs: pd.DataFrame,
    scores: np.ndarray,
    heldout_types: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Threshold from validation; overall and per-subset metrics of ``pairs`` at it (a plain dict)."""
    val_labels = val_pairs["label"].to_numpy(dtype=np.int64)
    labels = pairs["label"].to_numpy(dtype=np.int64)
    result = val_test_metrics(val_labels, val_scores, labels, scores)
    metrics = dict(result["test"])
    if labels.sum() > 0:
        metrics["ap_ci95_low"], metrics["ap_ci95_high"] = ap_bootstrap_ci(labels, scores)
        metrics.update({f"{k}_at_5pct": v for k, v in at_prevalence(labels, scores).items()})
    return {
        "threshold": result["threshold"],
        "val": result["val"],
        "metrics": metrics,
        "subsets": subset_metrics(labels, scores, subset_masks(pairs, heldout_types), result["threshold"]),
    }
