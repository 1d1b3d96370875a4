"""Day slices of a data root: the clips of some days, the pairs within them, media hard-linked."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from clipguard.data.days import SLICE_KEY, corpus_days, slice_days

# clip -> day (2026-11-01 is day 0); c4 was published late on day 1 (UTC)
DAYS = {"c0": 0, "c1": 0, "c2": 1, "c3": 2, "c4": 1}
PAIRS = [("c0", "c1"), ("c0", "c2"), ("c2", "c4"), ("c3", "c4")]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    (root / "manifests").mkdir(parents=True)
    (root / "videos").mkdir()
    stamps = {
        k: pd.Timestamp("2026-11-01", tz="UTC") + pd.Timedelta(days=d, hours=23 if k == "c4" else 3) for k, d in DAYS.items()
    }
    pd.DataFrame(
        {"clip_id": list(DAYS), "video_uri": [f"videos/{k}.mp4" for k in DAYS], "event_timestamp": list(stamps.values())}
    ).to_parquet(root / "manifests" / "clips.parquet")
    pd.DataFrame(
        {
            "pair_id": [f"p{i}" for i in range(len(PAIRS))],
            "query_clip_id": [q for q, _ in PAIRS],
            "candidate_clip_id": [c for _, c in PAIRS],
            "label": [1, 0, 1, 0],
        }
    ).to_parquet(root / "manifests" / "pairs.parquet")
    for k in DAYS:
        (root / "videos" / f"{k}.mp4").write_bytes(k.encode())
    (root / "corpus.json").write_text(json.dumps({"start_date": "2026-11-01", "fingerprint": "f1", "days": 3}))
    return root


def test_corpus_days_counts_clips_per_day(root: Path) -> None:
    assert corpus_days(root) == {0: 2, 1: 2, 2: 1}


def test_slice_keeps_the_days_clips_their_pairs_and_links_media(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "day1"
    sliced = slice_days(root, out, [1])
    assert (sliced.days, sliced.dates, sliced.clips, sliced.pairs, sliced.created) == ((1,), ("2026-11-02",), 2, 1, True)
    clips = pd.read_parquet(out / "manifests" / "clips.parquet")
    pairs = pd.read_parquet(out / "manifests" / "pairs.parquet")
    assert sorted(clips["clip_id"]) == ["c2", "c4"]
    assert pairs["pair_id"].tolist() == ["p2"]  # pairs reaching a clip of another day are left out
    assert (out / "videos" / "c2.mp4").stat().st_ino == (root / "videos" / "c2.mp4").stat().st_ino
    assert not (out / "videos" / "c0.mp4").exists()
    meta = json.loads((out / "corpus.json").read_text())
    assert meta["fingerprint"] == "f1" and meta[SLICE_KEY]["days"] == [1]


def test_cumulative_slice_and_idempotent_rerun(root: Path, tmp_path: Path) -> None:
    first = slice_days(root, tmp_path / "upto1", range(2))
    assert (first.clips, first.pairs, first.created) == (4, 3, True)
    again = slice_days(root, tmp_path / "upto1", [1, 0])
    assert (again.clips, again.pairs, again.created) == (4, 3, False)
    with pytest.raises(FileExistsError, match="is not the slice of days \\[2\\]"):
        slice_days(root, tmp_path / "upto1", [2])


def test_a_day_without_clips_is_refused_with_the_days_there_are(root: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no clips on day\(s\) \[5\] \(it has days \[0, 1, 2\]\)"):
        slice_days(root, tmp_path / "day5", [5])
    assert not (tmp_path / "day5").exists()
