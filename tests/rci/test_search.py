"""``search_video``: encode a query video, retrieve from the index, score with the student."""

from __future__ import annotations

import shutil

import pytest

from clipguard.features.extract import extract_features
from clipguard.index import build_index
from clipguard.media.reader import MediaError
from clipguard.rci.search import VideoSearcher, search_video
from tests.rci.conftest import ENCODER_VERSION, validated_root


@pytest.fixture(scope="module")
def bank(rci_env, rci_media, tmp_path_factory):
    """Features of four photo clips (the bank) and their HNSW index."""
    cfg, enc_dir, _ = rci_env
    base = tmp_path_factory.mktemp("bank")
    root = validated_root(base / "root", rci_media, ["astronaut", "coffee", "rocket", "horse"])
    features = extract_features(root, cfg, enc_dir, base / "features", progress=False).features_dir
    index = build_index(features, cfg, progress=False)  # into <work_dir>/index: the default of search_video
    return features, index


def test_search_returns_top_k_candidates_scored_by_the_student(rci_env, rci_media, bank):
    cfg, _, student_dir = rci_env
    _, index = bank
    rows = search_video(rci_media / "videos/astronaut_copy.mp4", cfg, top_k=3, model_uri=student_dir, progress=False)
    assert [r["rank"] for r in rows] == [1, 2, 3]
    assert rows[0]["clip_id"] == "clip_astronaut"  # a re-encode retrieves its source first
    assert rows[0]["similarity"] > 0.95
    assert rows[0]["similarity"] >= rows[1]["similarity"] >= rows[2]["similarity"]
    assert len({r["clip_id"] for r in rows}) == 3
    for r in rows:
        assert 0.0 <= r["score"] <= 1.0 and r["label"] == int(r["score"] >= 0.5) and r["threshold"] == 0.5
        assert r["encoder_version"] == ENCODER_VERSION and r["index_version"] == index.version
        assert r["model_version"] == "stest"


def test_a_searcher_serves_many_queries_and_k_beyond_the_bank(rci_env, rci_media, bank):
    cfg, _, student_dir = rci_env
    _, index = bank
    searcher = VideoSearcher(cfg, index.index_dir, model_uri=student_dir)
    rows = searcher.search(rci_media / "videos/coffee.mp4", top_k=10, title="a video of coffee")
    assert len(rows) == 4 and rows[0]["clip_id"] == "clip_coffee"
    assert rows[0]["similarity"] == pytest.approx(1.0, abs=1e-3)  # the bank's own clip, same text
    with pytest.raises(MediaError, match="decode_error"):
        searcher.search(rci_media / "videos/corrupt.mp4")


def test_mismatched_encoders_are_refused(rci_env, rci_media, bank, tmp_path):
    cfg, enc_dir, student_dir = rci_env
    _, index = bank
    other = tmp_path / "encoders" / "e-other"
    shutil.copytree(enc_dir, other)
    import json

    meta = json.loads((other / "encoder.json").read_text())
    (other / "encoder.json").write_text(json.dumps({**meta, "version": "e-other"}))
    with pytest.raises(ValueError, match="e-other"):
        VideoSearcher(cfg, index.index_dir, model_uri=student_dir, encoder_dir=other)
