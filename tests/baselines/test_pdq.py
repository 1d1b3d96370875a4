"""vPDQ / per-frame PDQ baselines on real photographs: copies, flips, other content, the cache."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from clipguard.baselines import baseline_pair_scores, baseline_scores, write_baseline_scores
from clipguard.baselines.pdq import FrameHashes, HashCache, cache_key, hamming_matrix, match_hashes
from clipguard.encoders.inputs import read_accepted


def _scores(root, cfg, method, **kw) -> pd.DataFrame:
    return baseline_pair_scores(root, read_accepted(root, "pairs"), cfg, method, progress=False, **kw).set_index("pair_id")


@pytest.mark.parametrize("method", ["pdq", "vpdq"])
def test_reencode_matches_and_other_content_does_not(hash_root, cfg, method):
    s = _scores(hash_root, cfg, method)
    assert s.loc["p_reencode", "match_share"] == 1.0
    assert s.loc["p_reencode", "similarity"] > 0.9
    assert s.loc["p_other", "match_share"] == 0.0
    assert s.loc["p_other", "similarity"] < 0.75
    assert s.loc["p_reencode", "score"] > s.loc["p_other", "score"]
    assert (s["n_candidate_frames"] == 3).all()  # 3-s clips, one hash per second


def test_vpdq_misses_a_horizontally_flipped_copy(hash_root, cfg):
    """PDQ is not mirror-invariant: a flipped copy is ~half the bits away (a documented weakness)."""
    s = _scores(hash_root, cfg, "vpdq")
    assert s.loc["p_flip", "match_share"] == 0.0
    assert s.loc["p_flip", "similarity"] < 0.7
    assert s.loc["p_flip", "score"] < s.loc["p_reencode", "score"]


@pytest.mark.parametrize("method", ["pdq", "vpdq"])
def test_unreadable_clips_score_zero_with_their_error(hash_root, cfg, method):
    s = _scores(hash_root, cfg, method)
    assert s.loc["p_gone", "score"] == 0.0 and s.loc["p_corrupt", "score"] == 0.0
    assert s.loc["p_gone", "error"].startswith("query missing_file:")
    assert s.loc["p_corrupt", "error"].startswith("query decode_error:")
    assert (s.drop(index=["p_gone", "p_corrupt"])["error"] == "").all()
    scores = baseline_scores(hash_root, read_accepted(hash_root, "pairs"), cfg, method, progress=False)
    assert np.isfinite(scores).all() and len(scores) == 5


@pytest.mark.parametrize("method,target", [("pdq", "pdqhash.compute"), ("vpdq", "vpdq.computeHash")])
def test_hashes_are_cached_per_clip(hash_root, cfg, monkeypatch, method, target):
    first = _scores(hash_root, cfg, method)

    def refuse(*args, **kwargs):
        raise AssertionError("hashed again although cached")

    monkeypatch.setattr(target, refuse)
    second = _scores(hash_root, cfg, method)
    pd.testing.assert_frame_equal(first, second)
    cache_dir = cfg.work_dir + f"/baselines/hashes/{cache_key(method, cfg.baselines)}"
    assert os.path.isfile(cache_dir + "/hashes.parquet") and not os.listdir(cache_dir + "/parts")

    # a changed media file is hashed again (and only its clips)
    monkeypatch.undo()
    calls = []
    import pdqhash
    import vpdq

    real = pdqhash.compute if method == "pdq" else vpdq.computeHash
    module = pdqhash if method == "pdq" else vpdq
    monkeypatch.setattr(module, target.split(".")[1], lambda *a, **k: calls.append(a) or real(*a, **k))
    other = hash_root / "videos" / "other.mp4"
    os.utime(other, ns=(other.stat().st_atime_ns, other.stat().st_mtime_ns + 10**9))
    third = _scores(hash_root, cfg, method)
    pd.testing.assert_frame_equal(first, third)
    assert len(calls) == (3 if method == "pdq" else 1)  # the 3 frames of one clip / one file


def test_cache_survives_an_interrupted_run(hash_root, cfg, tmp_path):
    """Published part files are read back even if the final merge never happened."""
    from clipguard.baselines.pdq import clip_hashes

    clips = read_accepted(hash_root, "clips")
    cache_root = tmp_path / "cache"
    clip_hashes(hash_root, clips, "pdq", cfg.baselines, cache_root, progress=False)
    d = cache_root / cache_key("pdq", cfg.baselines)
    merged = d / "hashes.parquet"
    merged.rename(d / "parts" / "part-restored.parquet")  # as if the run stopped before compact()
    cache = HashCache(d)
    assert cache.get("src", "videos/src.mp4", 0.0, 3.0, _stat(hash_root / "videos/src.mp4")) is not None


def _stat(path):
    st = path.stat()
    return int(st.st_size), int(st.st_mtime_ns)


def test_match_hashes_thresholds():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (4, 32), dtype=np.uint8)
    b = a.copy()
    b[:, 0] ^= 0xFF  # 8 bits off in every frame
    assert (hamming_matrix(a, b).diagonal() == 8).all()
    times = np.arange(4.0)
    q = FrameHashes(times, a, np.full(4, 100, np.int16))
    c = FrameHashes(times, b, np.array([100, 100, 10, 10], np.int16))
    m = match_hashes(q, c, pdq_distance=31, min_quality=50)
    assert m.n_query == 4 and m.n_candidate == 2  # low-quality candidate frames are ignored
    assert m.match_share == 0.5  # frames 2 and 3 only had low-quality twins
    strict = match_hashes(q, c, pdq_distance=7, min_quality=50)
    assert strict.match_share == 0.0
    assert match_hashes(q, FrameHashes.empty(), 31, 50).similarity == 0.0


def test_write_baseline_scores_long_format(hash_root, cfg, tmp_path):
    pairs = read_accepted(hash_root, "pairs")
    out = write_baseline_scores(hash_root, pairs, cfg, tmp_path / "scores.parquet", methods=("vpdq", "pdq"), progress=False)
    df = pd.read_parquet(out)
    assert len(df) == 2 * len(pairs)
    assert set(df["method"]) == {"vpdq", "pdq"}
    assert {"pair_id", "score", "match_share", "similarity", "error", "label", "split"} <= set(df.columns)


def test_unknown_clip_in_pairs_is_refused(hash_root, cfg):
    pairs = pd.DataFrame({"query_clip_id": ["src"], "candidate_clip_id": ["nope"]})
    with pytest.raises(KeyError, match="nope"):
        baseline_scores(hash_root, pairs, cfg, "pdq", progress=False)
