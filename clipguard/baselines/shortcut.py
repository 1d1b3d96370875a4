"""Shortcut baselines: scores that read a pair's lengths, never its content.

A copy is often exactly as long as its original (no time edit), while two unrelated clips
rarely are, so ``-|duration difference|`` can score a corpus well without looking at a
pixel. A learned model that does not beat these has learned the shortcut, not copy
detection (the corpus generator gives copies durations independent of the original's and
the student resamples clips to a fixed token count; these baselines show that it worked).

* ``duration`` — ``-|d_q - d_c|`` with ``d`` the clip window ``end_s - start_s``;
* ``frame_count`` — ``-|n_q - n_c|`` with ``n`` the frames the feature extractor decoded
  (``n_frames`` of the features; needs ``features_dir``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from clipguard.features.store_format import read_clip_features, resolve_features_dir

__all__ = ["SHORTCUT_METHODS", "shortcut_pair_scores"]

SHORTCUT_METHODS: tuple[str, ...] = ("duration", "frame_count")


def _lengths(root: str | Path, method: str, features_dir: str | Path | None, needed: set[str]) -> dict[str, float]:
    if method == "duration":
        from clipguard.encoders.inputs import read_accepted

        clips = read_accepted(root, "clips")
        clips = clips[clips["clip_id"].isin(needed)]
        return dict(zip(clips["clip_id"], (clips["end_s"] - clips["start_s"]).astype(float)))
    if method == "frame_count":
        if features_dir is None:
            raise ValueError("the frame_count baseline needs features_dir (extracted clip features)")
        table = read_clip_features(resolve_features_dir(features_dir), columns=["clip_id", "n_frames"])
        table = table[table["clip_id"].isin(needed)]
        return dict(zip(table["clip_id"], table["n_frames"].astype(float)))
    raise ValueError(f"unknown shortcut baseline {method!r} (known: {SHORTCUT_METHODS})")


def shortcut_pair_scores(
    root: str | Path, pairs: pd.DataFrame, method: str, features_dir: str | Path | None = None
) -> pd.DataFrame:
    """``-|length difference|`` per pair of ``pairs`` (same index and order).

    Returns ``query_length``, ``candidate_length``, ``similarity`` (the score) and ``error``
    (``"missing_length: ..."`` when a clip is not an accepted clip or has no features; such a
    pair scores the lowest finite score of the batch minus one, never a win).
    """
    needed = set(pairs["query_clip_id"]) | set(pairs["candidate_clip_id"])
    lengths = _lengths(root, method, features_dir, needed)
    q = pairs["query_clip_id"].map(lengths).to_numpy(dtype=np.float64)
    c = pairs["candidate_clip_id"].map(lengths).to_numpy(dtype=np.float64)
    score = -np.abs(q - c)
    bad = np.isnan(score)
    errors = [
        "missing_length: "
        + ", ".join(f"{side} {cid}" for side, cid, v in (("query", qi, qv), ("candidate", ci, cv)) if np.isnan(v))
        if b
        else ""
        for qi, ci, qv, cv, b in zip(pairs["query_clip_id"], pairs["candidate_clip_id"], q, c, bad)
    ]
    if bad.any():
        floor = float(np.nanmin(score)) - 1.0 if (~bad).any() else -1.0
        score = np.where(bad, floor, score)
    return pd.DataFrame({"query_length": q, "candidate_length": c, "similarity": score, "error": errors}, index=pairs.index)
