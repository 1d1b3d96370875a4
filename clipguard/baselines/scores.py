"""Baseline scores for RCI pairs, their Parquet file, and the comparison with the student.

* :func:`baseline_scores` — one score per pair (higher = more likely a copy) for
  ``method`` in ``vpdq`` / ``pdq`` (perceptual hashes, :mod:`clipguard.baselines.pdq`) or
  ``embedding`` / ``text_embedding`` (clip-embedding / MiniLM text cosine,
  :mod:`clipguard.baselines.embedding`), or the
  shortcut scorers ``duration`` / ``frame_count`` (``-|length difference|``,
  :mod:`clipguard.baselines.shortcut`) that every learned model must beat, or the audio
  fingerprint ``chromaprint`` (:mod:`clipguard.baselines.chromaprint`) for copies decided
  by their soundtrack. Scores are
  always finite, so AP / R@P80 (:mod:`clipguard.eval.metrics`) are defined; a pair whose
  clip could not be hashed (or has no features) scores 0 and is logged.
* :func:`baseline_pair_scores` — the same with the details (match share, similarities,
  frame counts, error) as a DataFrame; :func:`write_baseline_scores` writes them for several
  methods to one Parquet (long format: one row per pair and method).
* :func:`compare_baselines` — the evaluation protocol of :mod:`clipguard.eval.evaluate`
  (threshold from the validation split, AP / R@P80 overall and per subset, held-out edit
  types included) for each baseline, and, given the student's ``metrics_<split>.json``,
  whether the student beats each baseline overall and on every held-out edit type
  (TARGETS.md).

For the hash methods the default score is the continuous ``similarity`` (mean nearest-frame
Hamming similarity); ``score="match_share"`` gives ThreatExchange's share of matched query
frames instead.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from clipguard.config import Config

__all__ = [
    "METHODS",
    "baseline_pair_scores",
    "baseline_scores",
    "compare_baselines",
    "evaluate_baseline",
    "write_baseline_scores",
]

log = logging.getLogger(__name__)

Method = Literal["vpdq", "pdq", "embedding", "text_embedding", "duration", "frame_count", "chromaprint"]
METHODS: tuple[Method, ...] = ("vpdq", "pdq", "embedding", "text_embedding", "duration", "frame_count", "chromaprint")
REFERENCE_METHODS: tuple[Method, ...] = ("embedding", "text_embedding", "duration", "frame_count")
"""The cheap baselines every evaluation scores on the model's own pairs."""
GATE_REFERENCE_METHODS: tuple[Method, ...] = ("embedding", "duration", "frame_count")
"""Those whose best value is the gate's ``baseline_<metric>``: the retrieval-by-visual-similarity
baseline and the length shortcuts a learned model must beat. MiniLM text cosine is scored and
reported beside them but is not part of the gate (today's local students are below it; see
the README's RCI results)."""
_EMBEDDING_COLUMNS = {"embedding": "clip_embedding", "text_embedding": "text_pooled"}
HashScore = Literal["similarity", "match_share"]
HASHES_SUBDIR = "hashes"
EVAL_SUBDIR = "eval"
COMPARED_METRICS = ("ap", "r_at_p80")
NEEDS_FEATURES: tuple[Method, ...] = ("embedding", "text_embedding", "frame_count")
"""Methods that read extracted features (``features_dir``)."""


def baselines_dir(cfg: Config) -> Path:
    """``<work_dir>/<cfg.baselines.dir>``: hash caches and evaluations."""
    return Path(cfg.work_dir) / cfg.baselines.dir


def baseline_pair_scores(
    root: str | Path,
    pairs: pd.DataFrame,
    cfg: Config,
    method: Method = "vpdq",
    features_dir: str | Path | None = None,
    score: HashScore = "similarity",
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Scores and details of ``method`` for ``pairs`` (rows with query/candidate clip ids).

    Args:
        root: the validated data root (clip windows and media for the hash methods).
        pairs: pair rows with ``query_clip_id`` and ``candidate_clip_id`` (``pair_id`` kept if present).
        cfg: ``cfg.baselines`` (hash settings, cache location).
        method: one of :data:`METHODS`.
        features_dir: extracted features (required for ``embedding``, ``text_embedding`` and ``frame_count``).
        score: hash methods: ``similarity`` (continuous, default) or ``match_share``.
        cache_dir: hash cache root (default ``<work_dir>/<baselines.dir>/hashes``).

    Returns:
        One row per pair, same order: ``pair_id`` (if given), ``query_clip_id``,
        ``candidate_clip_id``, ``method``, ``score`` and the method's details, ``error``.

    Raises:
        ValueError: unknown method/score, or no ``features_dir`` for ``embedding``.
        KeyError: a pair names a clip that is not an accepted clip of ``root``.
    """
    from clipguard.baselines.chromaprint import chromaprint_pair_scores
    from clipguard.baselines.embedding import embedding_pair_scores
    from clipguard.baselines.pdq import clip_hashes, hash_pair_scores
    from clipguard.baselines.shortcut import SHORTCUT_METHODS, shortcut_pair_scores
    from clipguard.encoders.inputs import read_accepted

    if method not in METHODS:
        raise ValueError(f"unknown baseline {method!r} (known: {METHODS})")
    if score not in ("similarity", "match_share"):
        raise ValueError(f"score must be 'similarity' or 'match_share', got {score!r}")
    keep = [c for c in ("pair_id", "query_clip_id", "candidate_clip_id") if c in pairs]
    out = pairs[keep].copy()
    out.insert(len(keep), "method", method)
    if method in _EMBEDDING_COLUMNS:
        if features_dir is None:
            raise ValueError(f"the {method} baseline needs features_dir (extracted clip features)")
        details = embedding_pair_scores(features_dir, pairs, _EMBEDDING_COLUMNS[method])
        out["score"] = details["similarity"].to_numpy(dtype=np.float64)
    elif method in SHORTCUT_METHODS:
        details = shortcut_pair_scores(root, pairs, method, features_dir)
        out["score"] = details["similarity"].to_numpy(dtype=np.float64)
    elif method == "chromaprint":
        details = chromaprint_pair_scores(root, pairs, progress)
        out["score"] = details["similarity"].to_numpy(dtype=np.float64)
    else:
        clips = read_accepted(root, "clips")
        needed = set(pairs["query_clip_id"]) | set(pairs["candidate_clip_id"])
        unknown = sorted(needed - set(clips["clip_id"]))
        if unknown:
            raise KeyError(f"{len(unknown)} clip(s) of the pairs are not accepted clips of {root}: {unknown[:5]}")
        clips = clips[clips["clip_id"].isin(needed)]
        hashes = clip_hashes(root, clips, method, cfg.baselines, cache_dir or baselines_dir(cfg) / HASHES_SUBDIR, progress)
        details = hash_pair_scores(pairs, hashes, cfg.baselines)
        out["score"] = details[score].to_numpy(dtype=np.float64)
    for column in details.columns:
        out[column] = details[column].to_numpy()
    n_bad = int((out["error"] != "").sum())
    if n_bad:
        log.warning("%s: %d of %d pair(s) scored 0 because a clip could not be scored (see the error column)", method, n_bad, len(out))
    return out.reset_index(drop=True)


def baseline_scores(
    root: str | Path,
    pairs_df: pd.DataFrame,
    cfg: Config,
    method: Method = "vpdq",
    features_dir: str | Path | None = None,
    score: HashScore = "similarity",
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> np.ndarray:
    """One finite score per pair of ``pairs_df`` (same order); see :func:`baseline_pair_scores`."""
    return baseline_pair_scores(root, pairs_df, cfg, method, features_dir, score, cache_dir, progress)["score"].to_numpy()


def write_baseline_scores(
    root: str | Path,
    pairs_df: pd.DataFrame,
    cfg: Config,
    out_path: str | Path,
    methods: Sequence[Method] = METHODS,
    features_dir: str | Path | None = None,
    score: HashScore = "similarity",
    progress: bool = True,
) -> Path:
    """Score ``pairs_df`` with every method and write one Parquet (one row per pair and method).

    Extra pair columns ``label``, ``split`` are carried over when present. ``embedding`` is
    skipped (with a warning) when ``features_dir`` is None.
    """
    from clipguard.encoders.io import atomic_write

    frames = []
    for method in methods:
        if method in NEEDS_FEATURES and features_dir is None:
            log.warning("%s baseline skipped: no features_dir", method)
            continue
        df = baseline_pair_scores(root, pairs_df, cfg, method, features_dir, score, progress=progress)
        for extra in ("label", "split"):
            if extra in pairs_df:
                df[extra] = pairs_df[extra].to_numpy()
        frames.append(df)
    if not frames:
        raise ValueError("no baseline to score: pass methods (and features_dir for embedding)")
    table = pd.concat(frames, ignore_index=True)
    return atomic_write(Path(out_path), lambda p: table.to_parquet(p, index=False))


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
    from clipguard.eval.evaluate import evaluate_scores

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
    import json

    from clipguard.data.schema import data_version
    from clipguard.encoders.io import write_json
    from clipguard.eval.evaluate import VAL_SPLIT, heldout_edit_types
    from clipguard.eval.metrics import json_ready
    from clipguard.training.data import load_pairs

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
