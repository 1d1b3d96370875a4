"""Baselines evaluated like a model, and compared with the student.

* :func:`evaluate_baseline` — score the validation and evaluated pairs with one method of
  :mod:`clipguard.baselines.scores` and evaluate it with
  :func:`clipguard.eval.evaluate.evaluate_scores` (threshold from val, overall and per-subset).
* :func:`reference_baseline` — the cheap reference methods on a model's own pairs; the best
  of the gate methods is the gate's ``baseline_<metric>``.
* :func:`compare_baselines` — that for each method, and, given the student's
  ``metrics_<split>.json``, whether the student beats each baseline overall and on every
  held-out edit type (TARGETS.md).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clipguard.baselines.scores import (
    GATE_REFERENCE_METHODS,
    METHODS,
    NEEDS_FEATURES,
    REFERENCE_METHODS,
    Method,
    baseline_pair_scores,
    baselines_dir,
)
from clipguard.config import Config
from clipguard.core.io import write_json
from clipguard.core.metrics import json_ready
from clipguard.data.schema import data_version
from clipguard.eval.protocol import VAL_SPLIT, evaluate_scores, heldout_edit_types
from clipguard.training.data import load_pairs

__all__ = ["BASELINE_METRICS", "COMPARED_METRICS", "EVAL_SUBDIR", "compare_baselines", "evaluate_baseline", "reference_baseline"]

log = logging.getLogger(__name__)

EVAL_SUBDIR = "eval"
COMPARED_METRICS = ("ap", "r_at_p80")
BASELINE_METRICS = COMPARED_METRICS
"""The metrics whose best reference value becomes the gate's ``baseline_<metric>``."""


def evaluate_baseline(
    root: str | Path,
    val_pairs: pd.DataFrame,
    pairs: pd.DataFrame,
    cfg: Config,
    method: Method,
    features_dir: str | Path | None = None,
    heldout_types: tuple[str, ...] = (),
    progress: bool = True,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Score ``val_pairs`` then ``pairs`` with ``method`` and evaluate it like a model
    (:func:`clipguard.eval.evaluate.evaluate_scores`: threshold from val, overall and
    per-subset metrics); ``n_errors`` counts pairs scored 0 because a clip could not be
    scored. Returns the result and the scored rows (val first)."""
    both = pd.concat([val_pairs, pairs], ignore_index=True)
    scored = baseline_pair_scores(root, both, cfg, method, features_dir, progress=progress)
    scores = scored["score"].to_numpy()
    result = evaluate_scores(val_pairs, scores[: len(val_pairs)], pairs, scores[len(val_pairs) :], heldout_types)
    result["n_errors"] = int((scored["error"] != "").sum())
    return result, scored


def _wins(student: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
    """Per metric: student value, baseline value, whether the student is strictly higher (None: undefined)."""
    out: dict[str, Any] = {}
    for m in COMPARED_METRICS:
        s, b = student.get(m), baseline.get(m)
        higher = None
        if s is not None and b is not None and not (math.isnan(s) or math.isnan(b)):
            higher = bool(s > b)
        out[m] = {"student": s, "baseline": b, "student_higher": higher}
    return out


def compare_baselines(
    root: str | Path,
    cfg: Config,
    split: str = "test",
    methods: Sequence[Method] = METHODS,
    features_dir: str | Path | None = None,
    student_report: str | Path | None = None,
    out_dir: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate each baseline like the student (:func:`clipguard.eval.evaluate.evaluate_scores`).

    Scores the validation pairs (for the F1 threshold) and ``split``'s pairs with every
    method, and computes AP / R@P80 / F1 overall and per subset (held-out edit types
    included). With ``student_report`` (the student's ``metrics_<split>.json`` written by
    :func:`clipguard.eval.evaluate.evaluate_student`), adds for each baseline whether the
    student's AP and R@P80 are higher overall, on ``heldout_edit`` and on every
    ``heldout_edit/<type>`` subset (``student_beats_baseline``: all of them).

    Writes ``baselines_<split>.json`` and ``baseline_scores_<split>.parquet`` to ``out_dir``
    (default ``<work_dir>/<baselines.dir>/eval``) and returns the report (their paths under
    ``files``). ``clipguard rci report`` turns the JSON into the README's comparison table.
    """
    val_pairs = load_pairs(root, (VAL_SPLIT,))
    pairs = load_pairs(root, (split,))
    heldout = heldout_edit_types(root)
    student = json.loads(Path(student_report).read_text()) if student_report is not None else None
    report: dict[str, Any] = {
        "split": split,
        "data_version": data_version(root),
        "features_dir": str(Path(features_dir).resolve()) if features_dir is not None else None,
        "settings": cfg.baselines.model_dump(mode="json"),
        "heldout_edit_types": list(heldout),
        "baselines": {},
    }
    tables = []
    for method in methods:
        if method in NEEDS_FEATURES and features_dir is None:
            log.warning("%s baseline skipped: no features_dir", method)
            continue
        result, scored = evaluate_baseline(root, val_pairs, pairs, cfg, method, features_dir, heldout, progress)
        if student is not None:
            compared = ["all", "heldout_edit", *[f"heldout_edit/{t}" for t in heldout]]
            wins = {}
            for subset in compared:
                s = student["metrics"] if subset == "all" else student.get("subsets", {}).get(subset)
                b = result["metrics"] if subset == "all" else result["subsets"].get(subset)
                if s is not None and b is not None:
                    wins[subset] = _wins(s, b)
            result["vs_student"] = wins
            result["student_beats_baseline"] = bool(wins) and all(
                v["student_higher"] is True for w in wins.values() for v in w.values() if v["student_higher"] is not None
            )
        report["baselines"][method] = result
        scored["split"] = [VAL_SPLIT] * len(val_pairs) + [split] * len(pairs)
        scored["label"] = np.concatenate([val_pairs["label"].to_numpy(), pairs["label"].to_numpy()])
        tables.append(scored)
    if student is not None:
        report["student"] = {k: student.get(k) for k in ("model", "model_dir", "model_version", "threshold", "metrics")}
        kept = ("heldout_edit", "heldout_source", *[f"heldout_edit/{t}" for t in heldout])
        report["student"]["subsets"] = {k: v for k, v in (student.get("subsets") or {}).items() if k in kept}
    out = Path(out_dir) if out_dir is not None else baselines_dir(cfg) / EVAL_SUBDIR
    out.mkdir(parents=True, exist_ok=True)
    report["files"] = {"json": str(out / f"baselines_{split}.json")}
    if tables:
        report["files"]["scores"] = str(out / f"baseline_scores_{split}.parquet")
        pd.concat(tables, ignore_index=True).to_parquet(report["files"]["scores"], index=False)
    write_json(report["files"]["json"], json_ready(report))
    return report


def reference_baseline(
    root: str | Path,
    features_dir: str | Path,
    val_pairs: pd.DataFrame,
    pairs: pd.DataFrame,
    cfg: Config,
    heldout_types: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The cheap reference methods (:data:`clipguard.baselines.scores.REFERENCE_METHODS`:
    visual clip-embedding cosine, MiniLM text cosine, and the duration / frame-count
    shortcuts) evaluated like the model, on the same val and split pairs.

    Returns ``methods`` (each method's ``threshold``, ``val``, ``metrics``, ``n_errors``),
    ``metrics`` (per metric the best value over
    :data:`~clipguard.baselines.scores.GATE_REFERENCE_METHODS`: the gate's reference, so a
    model must beat the strongest of them), ``best`` (metric -> the method that set it) and
    ``method``/``threshold``/``n_errors`` of the gate method with the best AP. Per-subset
    metrics stay with ``rci baselines``.
    """
    methods: dict[str, Any] = {}
    for method in REFERENCE_METHODS:
        result, _ = evaluate_baseline(root, val_pairs, pairs, cfg, method, features_dir, heldout_types, progress=False)
        methods[method] = {k: result[k] for k in ("threshold", "val", "metrics", "n_errors")}

    def value(method: str, metric: str) -> float:
        v = methods[method]["metrics"].get(metric)
        return float("-inf") if v is None or math.isnan(v) else float(v)

    best = {m: max(GATE_REFERENCE_METHODS, key=lambda name: value(name, m)) for m in BASELINE_METRICS}
    top = best["ap"]
    return {
        "method": top,
        "threshold": methods[top]["threshold"],
        "n_errors": methods[top]["n_errors"],
        "metrics": {m: methods[best[m]]["metrics"][m] for m in BASELINE_METRICS},
        "best": best,
        "methods": methods,
    }
