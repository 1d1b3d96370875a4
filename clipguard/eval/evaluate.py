"""Evaluate a trained RCI model on a split: overall and per-subset metrics, PR curves, scores.

Protocol (the paper's metrics, §4.2): score the validation pairs and the evaluated split;
the F1 threshold is the one that maximises F1 on validation and is applied unchanged to
the evaluated split; AP and R@P80 need no threshold. Per-subset metrics follow
:mod:`clipguard.eval.subsets`.

:func:`evaluate_student` scores with MatchLite from the cached features;
:func:`evaluate_teacher` reads the teacher's cached outputs
(:func:`clipguard.training.teacher_cache.cache_teacher`, which scores only pairs not cached
yet). Both write to ``out_dir`` (default ``<model_dir>/eval``)::

    metrics_<split>.json   threshold, val and split metrics, per-subset metrics, lineage;
                           for the student also ``baseline`` (the best of the cheap reference
                           methods on the same pairs, :func:`clipguard.eval.baselines.reference_baseline`), whose ap and
                           r_at_p80 join ``metrics`` as baseline_ap / baseline_r_at_p80 (the
                           gate's reference);
                           for the student also ``speed`` (:mod:`clipguard.eval.speed`), whose
                           pairs_per_s, p50_ms, p99_ms, gflops and fraction_of_matmul_peak join
                           ``metrics`` (the registry step attaches those; the student gate
                           requires pairs_per_s and p99_ms) unless ``models.speed.enabled`` is off
    pr_<split>.png         PR curves of the split: all pairs and the positive subsets
    scores_<split>.parquet pair_id, split, label, score of the validation and evaluated pairs

and, with ``track``, log the metrics, the JSON, a Markdown table of the subsets and the
PNG to MLflow (:mod:`clipguard.core.tracking`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clipguard.config import Config, load_config
from clipguard.core.io import write_json
from clipguard.core.metrics import json_ready, save_pr_curves
from clipguard.core.tracking import Lineage, log_json, log_markdown_table, log_metrics, log_png
from clipguard.data.schema import data_version
from clipguard.eval.baselines import BASELINE_METRICS, reference_baseline
from clipguard.eval.protocol import VAL_SPLIT, evaluate_scores, heldout_edit_types
from clipguard.eval.subsets import ALL, subset_masks
from clipguard.features.store_format import resolve_features_dir
from clipguard.training.data import load_pairs
from clipguard.training.loop import tracked_run

PLOTTED_SUBSETS = (ALL, "reason_visual", "reason_audio", "reason_text", "heldout_edit", "heldout_source")

BASELINE_PREFIX = "baseline_"
"""``baseline_<metric>``: the reference method's value on the candidate's test pairs (``min_over_baseline``)."""


def _write(
    report: dict[str, Any],
    val_pairs: pd.DataFrame,
    val_scores: np.ndarray,
    pairs: pd.DataFrame,
    scores: np.ndarray,
    split: str,
    out: Path,
    title: str,
    heldout_types: tuple[str, ...],
) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    labels = pairs["label"].to_numpy(dtype=np.int64)
    masks = subset_masks(pairs, heldout_types)
    curves = {name: (labels[masks[name]], scores[masks[name]]) for name in PLOTTED_SUBSETS if name in masks}
    png = save_pr_curves(curves, out / f"pr_{split}.png", title=f"{title} — {split}")
    table = pd.concat(
        [
            pd.DataFrame({"pair_id": val_pairs["pair_id"], "split": VAL_SPLIT, "label": val_pairs["label"], "score": val_scores}),
            pd.DataFrame({"pair_id": pairs["pair_id"], "split": split, "label": pairs["label"], "score": scores}),
        ],
        ignore_index=True,
    )
    scores_path = out / f"scores_{split}.parquet"
    table.to_parquet(scores_path, index=False)
    report = {**report, "files": {"json": str(out / f"metrics_{split}.json"), "png": str(png), "scores": str(scores_path)}}
    write_json(out / f"metrics_{split}.json", json_ready(report))
    return report


def subset_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-subset metrics of a report as table rows (for Markdown / MLflow tables)."""
    rows = []
    for name, m in report["subsets"].items():
        rows.append(
            {
                "subset": name,
                "n": int(m["n"]),
                "n_pos": int(m["n_pos"]),
                "AP": m["ap"],
                "R@P80": m["r_at_p80"],
                "F1@val-thr": m.get("f1"),
                "FPR@val-thr": m.get("fpr"),
            }
        )
    return rows


def _track(report: dict[str, Any], cfg: Config, run_name: str, lineage: Lineage, split: str) -> None:
    with tracked_run(True, run_name, cfg, lineage, {"rci.eval_split": split}, {"clipguard.step": "evaluate"}):
        log_metrics({"val": report["val"], split: report["metrics"], "subsets": report["subsets"]})
        log_json(json_ready(report), f"rci/metrics_{split}.json")
        log_markdown_table(subset_rows(report), f"rci/subsets_{split}.md", title=f"{report['model']} on {split}")
        log_png(report["files"]["png"], f"rci/pr_{split}.png")


def evaluate_student(
    model_dir: str | Path,
    features_dir: str | Path,
    root: str | Path,
    split: str = "test",
    cfg: Config | None = None,
    out_dir: str | Path | None = None,
    track: bool = True,
) -> dict[str, Any]:
    """Score ``split`` (and val, for the threshold) with a trained MatchLite; write and return the report."""
    from clipguard.training.student import features_version, load_student, score_pairs, student_dataset
    from clipguard.training.teacher_cache import model_version

    cfg = cfg or load_config()
    model = load_student(model_dir)
    features = resolve_features_dir(features_dir)
    rci_only = {"rci": 2}  # scoring needs no auxiliary labels
    val = student_dataset(root, features, (VAL_SPLIT,), model.config, rci_only)
    test = student_dataset(root, features, (split,), model.config, rci_only)
    batch = cfg.models.training.eval_batch_size
    val_scores, scores = score_pairs(model, val, batch), score_pairs(model, test, batch)
    heldout = heldout_edit_types(root)
    report = {
        "model": "student",
        "model_dir": str(Path(model_dir).resolve()),
        "model_version": model_version(model_dir),
        "modalities": model.config.modalities,
        "split": split,
        "data_version": data_version(root),
        "features_version": features_version(features),
        **evaluate_scores(val.pairs, val_scores, test.pairs, scores, heldout),
    }
    report["baseline"] = reference_baseline(root, features, val.pairs, test.pairs, cfg, heldout)
    # the gate's min_over_baseline rules compare ap / r_at_p80 with these, measured on the same pairs
    report["metrics"] = {
        **report["metrics"],
        **{f"{BASELINE_PREFIX}{k}": report["baseline"]["metrics"][k] for k in BASELINE_METRICS},
    }
    if cfg.models.speed.enabled:  # the student gate requires pairs_per_s and p99_ms
        from clipguard.eval.speed import GATE_METRICS, measure_student_speed

        report["speed"] = measure_student_speed(model, test, cfg)
        report["metrics"] = {**report["metrics"], **{k: report["speed"][k] for k in GATE_METRICS}}
    out = Path(out_dir) if out_dir is not None else Path(model_dir) / "eval"
    report = _write(report, val.pairs, val_scores, test.pairs, scores, split, out, "MatchLite", heldout)
    if track:
        lineage = Lineage(
            data_version=report["data_version"], encoder_version=report["features_version"], model_version=report["model_version"]
        )
        _track(report, cfg, "rci-evaluate-student", lineage, split)
    return report


def evaluate_teacher(
    model_dir: str | Path,
    root: str | Path,
    split: str = "test",
    cfg: Config | None = None,
    cache_dir: str | Path | None = None,
    out_dir: str | Path | None = None,
    media_dir: str | Path | None = None,
    progress: bool = True,
    track: bool = True,
) -> dict[str, Any]:
    """Evaluate a trained MatchLM from its cached outputs (computed for val + ``split`` if missing)."""
    from clipguard.training.teacher_cache import cache_teacher

    cfg = cfg or load_config()
    outputs = cache_teacher(model_dir, root, cfg, cache_dir, splits=(VAL_SPLIT, split), media_dir=media_dir, progress=progress)
    val_pairs = load_pairs(root, (VAL_SPLIT,))
    pairs = load_pairs(root, (split,))
    val_pairs = val_pairs[val_pairs["pair_id"].isin(list(outputs.index))].reset_index(drop=True)
    pairs = pairs[pairs["pair_id"].isin(list(outputs.index))].reset_index(drop=True)
    val_scores, scores = outputs.scores(list(val_pairs["pair_id"])), outputs.scores(list(pairs["pair_id"]))
    heldout = heldout_edit_types(root)
    report = {
        "model": "teacher",
        "model_dir": str(Path(model_dir).resolve()),
        "model_version": outputs.teacher_version,
        "split": split,
        "data_version": outputs.data_version,
        "teacher_cache": str(outputs.path),
        **evaluate_scores(val_pairs, val_scores, pairs, scores, heldout),
    }
    out = Path(out_dir) if out_dir is not None else Path(model_dir) / "eval"
    report = _write(report, val_pairs, val_scores, pairs, scores, split, out, "MatchLM", heldout)
    if track:
        _track(
            report,
            cfg,
            "rci-evaluate-teacher",
            Lineage(data_version=report["data_version"], model_version=report["model_version"]),
            split,
        )
    return report
