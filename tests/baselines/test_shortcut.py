"""Shortcut baselines: -|length difference| per pair, from the manifest or the features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clipguard.baselines.scores import baseline_pair_scores
from clipguard.baselines.shortcut import shortcut_pair_scores
from clipguard.config import Config


def test_duration_shortcut_reads_window_lengths(hash_root: Path, cfg: Config) -> None:
    import pyarrow.parquet as pq

    clips_path = hash_root / "validated" / "clips.parquet"
    clips = pq.read_table(clips_path).to_pandas()
    clips.loc[clips["clip_id"] == "other", "end_s"] = 1.0  # 3 s vs 1 s
    pq.write_table(
        pq.read_table(clips_path).from_pandas(clips, schema=pq.read_schema(clips_path), preserve_index=False), clips_path
    )
    pairs = pd.DataFrame({"query_clip_id": ["reencode", "other", "nope"], "candidate_clip_id": ["src", "src", "src"]})
    out = shortcut_pair_scores(hash_root, pairs, "duration")
    assert out["similarity"].tolist()[:2] == [0.0, -2.0]
    assert out["error"].tolist()[:2] == ["", ""]
    assert out["error"][2] == "missing_length: query nope"
    assert out["similarity"][2] < -2.0  # never a win


def test_shortcut_is_a_baseline_method(hash_root: Path, cfg: Config) -> None:
    pairs = pd.DataFrame({"pair_id": ["a"], "query_clip_id": ["flip"], "candidate_clip_id": ["src"]})
    out = baseline_pair_scores(hash_root, pairs, cfg, "duration", progress=False)
    assert out["method"].tolist() == ["duration"] and np.isfinite(out["score"]).all()


def test_frame_count_needs_features(hash_root: Path) -> None:
    pairs = pd.DataFrame({"query_clip_id": ["flip"], "candidate_clip_id": ["src"]})
    with pytest.raises(ValueError, match="features_dir"):
        shortcut_pair_scores(hash_root, pairs, "frame_count")
    with pytest.raises(ValueError, match="unknown shortcut"):
        shortcut_pair_scores(hash_root, pairs, "bitrate")
