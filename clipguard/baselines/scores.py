"""Baseline scores for RCI pairs, their Parquet file, and the comparison with the student.

* :func:`baseline_scores` — one score per pair (higher = more likely a copy) for
  ``method`` in ``vpdq`` / ``pdq`` (perceptual hashes, :mod:`clipguard.baselines.pdq`) or
  ``embedding`` / ``text_embedding`` (clip-embedding / MiniLM text cosine,
  :mod:`clipguard.baselines.embedding`), or the
  shortcut scorers ``duration`` / ``frame_count`` (``-|length difference|``,
  :mod:`clipguard.baselines.shortcut`) that every learned model must beat, or the audio
  fingerprint ``chromaprint`` (:mod:`clipguard.baselines.chromaprint`) for copies decided
  by their soundtrack. Scores are
  always finite, so AP / R@P80 (:mod:`clipguard.core.metrics`) are defined; a pair whose
  clip could not be hashed (or has no features) scores 0 and is logged.
* :func:`baseline_pair_scores` — the same with the details (match share, similarities,
  frame counts, error) as a DataFrame; :func:`write_baseline_scores` writes them for several
  methods to one Parquet (long format: one row per pair and method).

Evaluating them like a model (threshold from validation, AP / R@P80 per subset, the
comparison with the student) is the evaluation layer's: :mod:`clipguard.eval.baselines`.

For the hash methods the default score is the continuous ``similarity`` (mean nearest-frame
Hamming similarity); ``score="match_share"`` gives ThreatExchange's share of matched query
frames instead.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from clipguard.config import Config
from clipguard.core.io import atomic_write

__all__ = [
    "METHODS",
    "baseline_pair_scores",
    "baseline_scores",
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
        if method != "vpdq" and method != "pdq":
            raise ValueError(f"unknown baseline {method!r} (known: {METHODS})")
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
        log.warning(
            "%s: %d of %d pair(s) scored 0 because a clip could not be scored (see the error column)", method, n_bad, len(out)
        )
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
