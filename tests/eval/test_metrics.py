"""Metrics against hand-computed values; subsets."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from clipguard.core.metrics import (
    at_threshold,
    average_precision,
    best_f1_threshold,
    binary_metrics,
    json_ready,
    recall_at_precision,
    save_pr_curves,
    val_test_metrics,
)
from clipguard.eval.subsets import subset_masks, subset_metrics

VAL_Y = [1, 0, 1, 0, 0]
VAL_S = [0.9, 0.8, 0.7, 0.3, 0.1]


def test_average_precision_by_hand() -> None:
    # ranked: + (P=1, R=1/2), -, + (P=2/3, R=1): AP = 1/2 * 1 + 1/2 * 2/3
    assert average_precision(VAL_Y, VAL_S) == pytest.approx(0.5 + 1 / 3)
    assert average_precision([0, 1], [0.2, 0.9]) == pytest.approx(1.0)
    assert math.isnan(average_precision([0, 0], [0.1, 0.2]))


def test_recall_at_precision_by_hand() -> None:
    # operating points (P, R): (1, .5) at 0.9, (2/3, 1) at 0.7, (.5, 1) at 0.3, (.4, 1) at 0.1
    assert recall_at_precision(VAL_Y, VAL_S, 0.8) == pytest.approx(0.5)
    assert recall_at_precision(VAL_Y, VAL_S, 0.6) == pytest.approx(1.0)
    # (P, R): (1, 1/3), (1, 2/3), (2/3, 2/3), (3/4, 1): the best recall at P >= 0.8 is 2/3
    assert recall_at_precision([1, 1, 0, 1], [0.9, 0.8, 0.7, 0.6], 0.8) == pytest.approx(2 / 3)
    assert recall_at_precision([1, 0], [0.1, 0.9], 0.8) == 0.0  # no threshold reaches P >= 0.8


def test_f1_threshold_from_val_applied_to_test() -> None:
    # val F1 per threshold: 0.9 -> 2/3, 0.7 -> 0.8, 0.3 -> 2/3, 0.1 -> 4/7: best is 0.7
    threshold, f1 = best_f1_threshold(VAL_Y, VAL_S)
    assert threshold == pytest.approx(0.7) and f1 == pytest.approx(0.8)
    test_y, test_s = [0, 1, 1, 0], [0.75, 0.72, 0.5, 0.1]
    # predicted positive at >= 0.7: the first two -> tp 1, fp 1, fn 1
    m = at_threshold(test_y, test_s, threshold)
    assert (m["tp"], m["fp"], m["fn"]) == (1, 1, 1)
    assert m["f1"] == pytest.approx(0.5) and m["precision"] == pytest.approx(0.5) and m["recall"] == pytest.approx(0.5)
    assert m["fpr"] == pytest.approx(0.5)
    both = val_test_metrics(VAL_Y, VAL_S, test_y, test_s)
    assert both["threshold"] == pytest.approx(0.7)
    assert both["val"]["f1"] == pytest.approx(0.8) and both["test"]["f1"] == pytest.approx(0.5)
    assert both["test"]["oracle_f1"] == pytest.approx(0.8)  # best F1 on test itself (threshold 0.5: P 2/3, R 1)


def test_best_threshold_prefers_the_most_precise_tie() -> None:
    # thresholds 0.9 (P=1, R=.5) and 0.4 (P=.5, R=1) both give F1 2/3 -> keep 0.9
    threshold, f1 = best_f1_threshold([1, 0, 0, 1], [0.9, 0.8, 0.6, 0.4])
    assert f1 == pytest.approx(2 / 3) and threshold == pytest.approx(0.9)


def test_binary_metrics_and_json(tmp_path) -> None:
    m = binary_metrics(VAL_Y, VAL_S, threshold=0.7)
    assert (m["n"], m["n_pos"]) == (5, 2) and m["ap"] == pytest.approx(5 / 6)
    assert json_ready({"a": float("nan"), "b": [np.float32(1.5)]}) == {"a": None, "b": [1.5]}
    with pytest.raises(ValueError):
        average_precision([0, 2], [0.1, 0.2])
    png = save_pr_curves({"all": (VAL_Y, VAL_S), "empty": ([0, 0], [0.1, 0.2])}, tmp_path / "pr.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_subset_masks_and_metrics() -> None:
    pairs = pd.DataFrame(
        {
            "label": [1, 1, 1, 0, 0, 0],
            "reason": ["visual", "audio", "text", "none", "none", "none"],
            "edit_types": ["crop", "rotate,volume", "", "", "", ""],
            "heldout_edit": [False, True, False, False, False, False],
            "heldout_source": [True, False, False, True, False, False],
            "hard_negative": [False, False, False, True, False, False],
            "trend_edit": [False] * 6,
        }
    )
    masks = subset_masks(pairs, heldout_edit_types=("rotate",))
    assert masks["reason_audio"].tolist() == [False, True, False, True, True, True]
    assert masks["heldout_edit/rotate"].tolist() == masks["heldout_edit"].tolist()
    assert masks["hard_negatives"].tolist() == [True, True, True, True, False, False]
    assert masks["heldout_source"].tolist() == [True, False, False, True, False, False]
    scores = np.array([0.9, 0.2, 0.8, 0.7, 0.1, 0.3])
    out = subset_metrics(pairs["label"], scores, masks, threshold=0.5)
    # audio copy (0.2) vs the negatives (0.7, 0.1, 0.3): ranked 3rd -> AP 1/3, missed at 0.5
    assert out["reason_audio"]["ap"] == pytest.approx(1 / 3) and out["reason_audio"]["recall"] == 0.0
    assert out["hard_negatives"]["fpr"] == pytest.approx(1.0)
    assert math.isnan(out["trend_edit"]["ap"])


def test_at_prevalence_reweights_negatives() -> None:
    from clipguard.core.metrics import at_prevalence, average_precision

    rng = np.random.default_rng(0)
    y = np.array([1] * 50 + [0] * 150)
    s = rng.normal(size=200) + 1.5 * y
    same = at_prevalence(y, s, 0.25)  # the split's own share: plain AP
    assert same["ap"] == pytest.approx(average_precision(y, s))
    rare = at_prevalence(y, s, 0.05)
    assert rare["ap"] < same["ap"] and rare["r_at_p80"] <= same["r_at_p80"]
    perfect = at_prevalence(y, y.astype(float), 0.05)
    assert perfect == {"ap": 1.0, "r_at_p80": 1.0}
    with pytest.raises(ValueError):
        at_prevalence(y, s, 0.0)


def test_ap_bootstrap_ci_brackets_the_ap_and_narrows_with_more_pairs() -> None:
    from clipguard.core.metrics import ap_bootstrap_ci, average_precision

    rng = np.random.default_rng(1)

    def data(n):
        y = np.array([1] * n + [0] * (3 * n))
        return y, rng.normal(size=4 * n) + 1.0 * y

    y, s = data(40)
    lo, hi = ap_bootstrap_ci(y, s, n_boot=300)
    assert lo < average_precision(y, s) < hi
    assert ap_bootstrap_ci(y, s, n_boot=300) == (lo, hi)  # seeded
    y2, s2 = data(400)
    lo2, hi2 = ap_bootstrap_ci(y2, s2, n_boot=300)
    assert hi2 - lo2 < hi - lo
