"""Chromaprint baseline: libchromaprint fingerprints of real encoded soundtracks, compared by bit error rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clipguard.baselines.chromaprint import chromaprint_pair_scores, clip_fingerprint, fingerprint_similarity
from clipguard.baselines.scores import baseline_pair_scores
from clipguard.config import Config
from clipguard.media.writer import write_video

SR = 16_000


def _music(seconds: float, seed: int) -> np.ndarray:
    """A melody of random notes with a beat (distinct per seed)."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * SR)) / SR
    notes = rng.uniform(200, 1500, int(seconds * 4) + 1)[(t * 4).astype(int)]
    beat = 0.5 + 0.5 * (np.sin(2 * np.pi * rng.uniform(1.5, 3.0) * t) > 0)
    return (0.4 * np.sin(2 * np.pi * np.cumsum(notes) / SR) * beat).astype(np.float32)


def _video(path: Path, audio: np.ndarray | None) -> Path:
    frames = [
        np.full((32, 32, 3), 40 * i % 255, np.uint8) for i in range(round(len(audio) / SR * 5) if audio is not None else 10)
    ]
    write_video(path, frames, fps=5, audio=audio, sample_rate=SR)
    return path


def test_a_reused_soundtrack_matches_and_another_does_not(tmp_path: Path) -> None:
    track = _music(8.0, 0)
    noisy = np.concatenate([np.zeros(SR // 2, np.float32), 0.5 * track[: 6 * SR]])  # shifted, quieter, cut
    noisy = noisy + np.random.default_rng(1).normal(0, 0.01, len(noisy)).astype(np.float32)
    a = clip_fingerprint(_video(tmp_path / "a.mp4", track), 0.0, 8.0)
    b = clip_fingerprint(_video(tmp_path / "b.mp4", noisy), 0.0, 6.5)
    c = clip_fingerprint(_video(tmp_path / "c.mp4", _music(8.0, 7)), 0.0, 8.0)
    assert a.dtype == np.uint32 and len(a) > 20
    copy, other = fingerprint_similarity(a, b), fingerprint_similarity(a, c)
    assert copy > other + 0.1 and fingerprint_similarity(a, a) == 1.0
    assert fingerprint_similarity(a, a[:2]) == 0.0  # too little overlap to compare


def test_clips_without_audio_score_zero_with_the_reason(hash_root: Path, cfg: Config) -> None:
    pairs = pd.DataFrame({"pair_id": ["p"], "query_clip_id": ["flip"], "candidate_clip_id": ["src"]})
    out = chromaprint_pair_scores(hash_root, pairs, progress=False)
    assert out["similarity"].tolist() == [0.0]
    assert out["error"][0].startswith("query flip: no_audio") and "candidate src: no_audio" in out["error"][0]
    via = baseline_pair_scores(hash_root, pairs, cfg, "chromaprint", progress=False)
    assert via["method"].tolist() == ["chromaprint"] and via["score"].tolist() == [0.0]
    with pytest.raises(KeyError, match="not accepted clips"):
        chromaprint_pair_scores(
            hash_root, pd.DataFrame({"query_clip_id": ["nope"], "candidate_clip_id": ["src"]}), progress=False
        )
