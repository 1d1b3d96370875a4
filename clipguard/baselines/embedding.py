"""Embedding baselines: cosine similarity of the two clips' stored vectors.

* ``clip_embedding`` (method ``embedding``): the 128-d vectors retrieval uses (MoCo / MoCo +
  CLIP encoder, :mod:`clipguard.features.store_format`); scoring a pair by their cosine alone
  is the "retrieve by visual similarity" baseline that MatchLite has to beat.
* ``text_pooled`` (method ``text_embedding``): the MiniLM sentence vectors of title + OCR +
  ASR. A copy that keeps its text scores ~1 here with no learning at all, so a model that
  reads text must beat it too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from clipguard.features.store_format import read_clip_features, resolve_features_dir

__all__ = ["embedding_pair_scores"]


def embedding_pair_scores(features_dir: str | Path, pairs: pd.DataFrame, column: str = "clip_embedding") -> pd.DataFrame:
    """Cosine similarity of ``query_clip_id`` and ``candidate_clip_id`` vectors (``column`` of
    the clip features) per pair.

    Returns a frame (same index and order as ``pairs``) with ``similarity`` in [-1, 1] and
    ``error``: ``"missing_features: ..."`` when a clip has no extracted features (not
    extracted, or quarantined at extraction); such a pair scores 0.
    """
    features = resolve_features_dir(features_dir)
    needed = set(pairs["query_clip_id"]) | set(pairs["candidate_clip_id"])
    table = read_clip_features(features, columns=["clip_id", column])
    table = table[table["clip_id"].isin(needed)]
    vectors = {}
    if len(table):
        x = np.stack(table[column].to_numpy()).astype(np.float32)
        x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        vectors = dict(zip(table["clip_id"], x))
    sims, errors = [], []
    for q, c in zip(pairs["query_clip_id"], pairs["candidate_clip_id"]):
        missing = [f"{side} {cid}" for side, cid in (("query", q), ("candidate", c)) if cid not in vectors]
        if missing:
            sims.append(0.0)
            errors.append(f"missing_features: {', '.join(missing)} not in {features}")
        else:
            sims.append(float(vectors[q] @ vectors[c]))
            errors.append("")
    return pd.DataFrame({"similarity": sims, "error": errors}, index=pairs.index)
