"""``score_pairs``: a CSV of video pairs in, one scored row out per row, per-row errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from clipguard.rci.score import score_pairs
from clipguard.rci.student import ModelNotFoundError, load_student
from tests.rci.conftest import ENCODER_VERSION


def test_one_row_out_per_row_in_with_errors_for_unreadable_files(rci_env, rci_media, tmp_path):
    cfg, _, student_dir = rci_env
    pairs = pd.DataFrame(
        {
            "query_path": [
                "videos/astronaut_copy.mp4",
                "videos/astronaut.mp4",
                "videos/corrupt.mp4",
                str(rci_media / "videos/coffee.mp4"),
            ],
            "candidate_path": ["videos/astronaut.mp4", "videos/missing.mp4", "videos/coffee.mp4", "videos/astronaut.mp4"],
            "query_title": ["astronaut", "astronaut", "", "a cup"],
            "candidate_title": ["astronaut", "", "a cup", "astronaut"],
            "pair_ref": ["r0", "r1", "r2", "r3"],
        }
    )
    csv = rci_media / "pairs.csv"  # relative paths resolve against the CSV's directory
    pairs.to_csv(csv, index=False)
    out = tmp_path / "scores.csv"
    result = score_pairs(csv, out, cfg, model_uri=student_dir, progress=False)

    df = pd.read_csv(out, keep_default_na=False)
    assert len(df) == 4 and df["pair_ref"].tolist() == ["r0", "r1", "r2", "r3"]
    assert (result.n_rows, result.n_scored, result.n_errors) == (4, 2, 2)
    assert result.videos_encoded == 3  # astronaut_copy, astronaut, coffee: each once
    ok = df.iloc[[0, 3]]
    assert ok["error"].tolist() == ["", ""]
    scores = ok["score"].astype(float).to_numpy()
    assert np.isfinite(scores).all() and ((scores >= 0) & (scores <= 1)).all()
    assert ok["label"].astype(int).tolist() == [int(s >= 0.5) for s in scores]
    assert df.loc[1, "error"].startswith("missing_file: candidate video ") and "missing.mp4" in df.loc[1, "error"]
    assert df.loc[2, "error"].startswith("decode_error: query video ") and "corrupt.mp4" in df.loc[2, "error"]
    assert df.loc[1, "score"] == "" and df.loc[2, "label"] == ""
    assert set(df["model_version"]) == {"stest"} and set(df["encoder_version"]) == {ENCODER_VERSION}
    assert set(df["threshold"].astype(float)) == {0.5}


def test_same_pair_scores_the_same_in_any_batch(rci_env, rci_media, tmp_path):
    cfg, _, student_dir = rci_env
    rows = [("videos/astronaut_copy.mp4", "videos/astronaut.mp4"), ("videos/rocket.mp4", "videos/horse.mp4")]
    csv = rci_media / "pairs_b.csv"
    pd.DataFrame(rows * 3, columns=["query_path", "candidate_path"]).to_csv(csv, index=False)
    score_pairs(csv, tmp_path / "s.csv", cfg, model_uri=student_dir, threshold=0.0, progress=False)
    df = pd.read_csv(tmp_path / "s.csv")
    assert np.allclose(df["score"][::2], df["score"][0], atol=1e-6)
    assert np.allclose(df["score"][1::2], df["score"][1], atol=1e-6)
    assert (df["label"] == 1).all()  # the explicit threshold wins over the stored one


def test_media_root_confines_paths_and_bad_windows_are_row_errors(rci_env, rci_media, tmp_path):
    cfg, _, student_dir = rci_env
    csv = tmp_path / "pairs.csv"
    pd.DataFrame(
        {
            "query_path": ["videos/astronaut.mp4", "../../etc/passwd", "videos/rocket.mp4"],
            "candidate_path": ["videos/coffee.mp4", "videos/coffee.mp4", "videos/horse.mp4"],
            "query_start_s": ["1", "", "abc"],
            "query_end_s": ["3", "", ""],
        }
    ).to_csv(csv, index=False)
    score_pairs(csv, tmp_path / "s.csv", cfg, model_uri=student_dir, media_root=rci_media, progress=False)
    df = pd.read_csv(tmp_path / "s.csv", keep_default_na=False)
    assert df.loc[0, "error"] == "" and 0 <= float(df.loc[0, "score"]) <= 1
    assert df.loc[1, "error"].startswith("path_outside_root: query video")
    assert df.loc[2, "error"].startswith("bad_window: query video") and "abc" in df.loc[2, "error"]


def test_schema_and_lineage_are_checked(rci_env, rci_media, tmp_path):
    cfg, _, student_dir = rci_env
    bad_csv = tmp_path / "bad.csv"
    pd.DataFrame({"query": ["a.mp4"], "candidate_path": ["b.mp4"]}).to_csv(bad_csv, index=False)
    with pytest.raises(ValueError, match="query_path"):
        score_pairs(bad_csv, tmp_path / "o.csv", cfg, model_uri=student_dir, progress=False)

    other = tmp_path / "student_other"
    shutil.copytree(student_dir, other)
    (other / "training.json").write_text(json.dumps({"version": "s2", "features_version": "e-other"}))
    csv = rci_media / "pairs.csv"
    with pytest.raises(FileNotFoundError, match="e-other"):
        score_pairs(csv, tmp_path / "o.csv", cfg, model_uri=other, progress=False)
    with pytest.raises(ValueError, match="trained on encoder e-other"):
        score_pairs(csv, tmp_path / "o.csv", cfg, model_uri=other, encoder_dir=rci_env[1], progress=False)
    with pytest.raises(ModelNotFoundError):
        load_student(tmp_path / "nowhere", cfg)
