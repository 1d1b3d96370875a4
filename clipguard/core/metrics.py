"""RCI metrics from score arrays (MatchLM2Lite §4.2): AP, F1 at a validation threshold, R@P80.

Everything takes ``labels`` (0/1) and ``scores`` (higher = more likely reproduced) as
array-likes and returns plain floats / dicts:

* :func:`average_precision` — scikit-learn's ``average_precision_score`` (step-wise area
  under the PR curve, no interpolation).
* :func:`recall_at_precision` — the highest recall among the operating points of
  ``precision_recall_curve`` whose precision is at least ``min_precision`` (0 when none
  reaches it); R@P80 is ``min_precision=0.8``.
* :func:`best_f1_threshold` — the threshold that maximises F1 on one split (the validation
  split); a pair is predicted positive when ``score >= threshold``. Ties keep the highest
  threshold (the most precise operating point).
* :func:`binary_metrics` — all of the above on one split, F1/precision/recall at a given
  (validation) threshold, plus the false-positive rate there.
* :func:`at_prevalence` — AP and R@P80 as they would be at another copy share (the
  paper's ~5%), by re-weighting the negatives (scikit-learn ``sample_weight``), so a test
  split built at 25% copies also says what precision means in production.
* :func:`ap_bootstrap_ci` — a percentile bootstrap interval of AP (pairs resampled within
  each class, a fixed seed), beside mean ± std over seeds.
* :func:`pr_curve_figure` / :func:`save_pr_curves` — PR curves as a matplotlib figure / PNG
  (Agg backend, no display needed).

A metric that is undefined on the given data (AP without positives, ...) is ``nan``;
:func:`json_ready` turns ``nan`` into ``None`` for strict JSON.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

R_AT_P = 0.8
"""the precision of the paper's recall-at-precision metric (R@P80)"""
PAPER_PREVALENCE = 0.05
"""the share of copies in the RCI paper's data (4.77%)"""


def _arrays(labels: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels, dtype=np.int64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in length: {y.shape[0]} vs {s.shape[0]}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    return y, s


def average_precision(labels: ArrayLike, scores: ArrayLike) -> float:
    """Average precision (``nan`` without positives)."""
    from sklearn.metrics import average_precision_score

    y, s = _arrays(labels, scores)
    if y.sum() == 0:
        return math.nan
    return float(average_precision_score(y, s))


def recall_at_precision(
    labels: ArrayLike, scores: ArrayLike, min_precision: float = R_AT_P, sample_weight: ArrayLike | None = None
) -> float:
    """Highest recall at a threshold whose precision is ``>= min_precision`` (``nan`` without positives);
    ``sample_weight`` weights pairs as scikit-learn does."""
    from sklearn.metrics import precision_recall_curve

    y, s = _arrays(labels, scores)
    if y.sum() == 0:
        return math.nan
    precision, recall, _ = precision_recall_curve(y, s, sample_weight=sample_weight)
    ok = precision >= min_precision
    return float(recall[ok].max()) if ok.any() else 0.0


def at_prevalence(labels: ArrayLike, scores: ArrayLike, prevalence: float = PAPER_PREVALENCE) -> dict[str, float]:
    """``ap`` and ``r_at_p80`` with the negatives weighted so that copies make ``prevalence``
    of the weighted pairs (``nan`` without positives or negatives)."""
    from sklearn.metrics import average_precision_score

    if not 0 < prevalence < 1:
        raise ValueError(f"prevalence must be in (0, 1), got {prevalence}")
    y, s = _arrays(labels, scores)
    n_pos, n_neg = int(y.sum()), int((y == 0).sum())
    if n_pos == 0 or n_neg == 0:
        return {"ap": math.nan, "r_at_p80": math.nan}
    w = np.where(y == 1, 1.0, n_pos * (1 - prevalence) / (prevalence * n_neg))
    return {
        "ap": float(average_precision_score(y, s, sample_weight=w)),
        "r_at_p80": recall_at_precision(y, s, R_AT_P, sample_weight=w),
    }


def ap_bootstrap_ci(
    labels: ArrayLike, scores: ArrayLike, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of AP: positives and negatives resampled with replacement
    separately (the class counts stay fixed), ``n_boot`` times from ``seed``."""
    from sklearn.metrics import average_precision_score

    y, s = _arrays(labels, scores)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    if len(pos) == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    values = np.empty(n_boot)
    for b in range(n_boot):
        idx = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))]) if len(neg) else rng.choice(pos, len(pos))
        values[b] = average_precision_score(y[idx], s[idx])
    lo, hi = np.quantile(values, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def best_f1_threshold(labels: ArrayLike, scores: ArrayLike) -> tuple[float, float]:
    """``(threshold, F1)`` maximising F1 of ``score >= threshold`` on these labels.

    Without positives the threshold is just above the highest score (predict nothing) and
    the F1 is ``nan``.
    """
    from sklearn.metrics import precision_recall_curve

    y, s = _arrays(labels, scores)
    if y.sum() == 0:
        return float(np.nextafter(s.max(), np.inf)) if s.size else math.inf, math.nan
    precision, recall, thresholds = precision_recall_curve(y, s)
    p, r = precision[:-1], recall[:-1]  # the last point (P=1, R=0) has no threshold
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(p + r > 0, 2 * p * r / (p + r), 0.0)
    best = np.flatnonzero(f1 == f1.max())
    i = best[np.argmax(thresholds[best])]
    return float(thresholds[i]), float(f1[i])


def at_threshold(labels: ArrayLike, scores: ArrayLike, threshold: float) -> dict[str, float]:
    """F1, precision, recall and false-positive rate of ``score >= threshold``."""
    y, s = _arrays(labels, scores)
    pred = s >= threshold
    tp = int((pred & (y == 1)).sum())
    fp = int((pred & (y == 0)).sum())
    fn = int((~pred & (y == 1)).sum())
    negatives = int((y == 0).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else math.nan
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else math.nan
    return {
        "f1": f1,
        "precision": precision,
        "recall": recall,
        "fpr": fp / negatives if negatives else math.nan,
        "tp": float(tp),
        "fp": float(fp),
        "fn": float(fn),
    }


def binary_metrics(labels: ArrayLike, scores: ArrayLike, threshold: float | None = None) -> dict[str, float]:
    """AP, R@P80, best (oracle) F1 and, with ``threshold``, F1/precision/recall/FPR at it; plus counts."""
    y, s = _arrays(labels, scores)
    out: dict[str, float] = {
        "n": float(y.size),
        "n_pos": float(y.sum()),
        "ap": average_precision(y, s),
        "r_at_p80": recall_at_precision(y, s, R_AT_P),
        "oracle_f1": best_f1_threshold(y, s)[1],
    }
    if threshold is not None:
        out["threshold"] = float(threshold)
        out.update(at_threshold(y, s, threshold))
    return out


def val_test_metrics(
    val_labels: ArrayLike, val_scores: ArrayLike, test_labels: ArrayLike, test_scores: ArrayLike
) -> dict[str, Any]:
    """Pick the F1-maximising threshold on validation, report validation and test metrics at it."""
    threshold, _ = best_f1_threshold(val_labels, val_scores)
    return {
        "threshold": threshold,
        "val": binary_metrics(val_labels, val_scores, threshold),
        "test": binary_metrics(test_labels, test_scores, threshold),
    }


def pr_curve_figure(curves: Mapping[str, tuple[ArrayLike, ArrayLike]], title: str = "precision-recall"):
    """A matplotlib figure with one PR curve per ``name -> (labels, scores)`` (AP in the legend)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from sklearn.metrics import precision_recall_curve

    fig = Figure(figsize=(5.5, 4.5), dpi=110)
    ax = fig.add_subplot()
    for name, (labels, scores) in curves.items():
        y, s = _arrays(labels, scores)
        if y.sum() == 0:
            continue
        precision, recall, _ = precision_recall_curve(y, s)
        ax.step(recall, precision, where="post", label=f"{name} (AP {average_precision(y, s):.3f}, n+={int(y.sum())})")
    ax.axhline(R_AT_P, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1.01)
    ax.set_ylim(0, 1.02)
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=7)
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.11, top=0.92)
    return fig


def save_pr_curves(curves: Mapping[str, tuple[ArrayLike, ArrayLike]], path: str | Path, title: str = "precision-recall") -> Path:
    """Write :func:`pr_curve_figure` as a PNG."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    pr_curve_figure(curves, title).savefig(out, format="png")
    return out


def json_ready(obj: Any) -> Any:
    """``obj`` with non-finite floats replaced by ``None`` and numpy scalars made Python numbers."""
    if isinstance(obj, Mapping):
        return {str(k): json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
