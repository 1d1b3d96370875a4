"""Shared fixtures: a tiny data root with real MP4s and contract manifests built from them.

``tiny_videos`` encodes the media once per session (64x48, 1-2 s, a few ms each);
``tiny_root`` copies them into a fresh root per test and writes ``manifests/clips.parquet``
and ``manifests/pairs.parquet``. A test edits ``tiny_root.clips`` / ``tiny_root.pairs``
(pandas frames) and calls ``tiny_root.write()`` to change the manifests.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from clipguard.data.schema import CLIPS_FILE, PAIRS_FILE
from clipguard.media.writer import write_video

TINY_SR = 16_000
VFR_TIMES = (0.0, 0.1, 0.2, 0.5, 0.55, 1.0, 1.5, 1.6)


def tiny_frames(n: int, h: int = 48, w: int = 64):
    """``n`` uniformly grey RGB frames whose level encodes the frame index."""
    for i in range(n):
        yield np.full((h, w, 3), (8 * i) % 256, np.uint8)


def tiny_tone(seconds: float, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * TINY_SR)) / TINY_SR
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_tiny_video(path: Path, seconds: float = 1.0, audio: bool = True) -> Path:
    """A constant-frame-rate 10 fps MP4 of ``seconds``, with a tone unless ``audio=False``."""
    return write_video(
        path,
        tiny_frames(int(seconds * 10)),
        fps=10,
        audio=tiny_tone(seconds) if audio else None,
        sample_rate=TINY_SR,
    )


@pytest.fixture(scope="session")
def tiny_videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with ``videos/{a,b,c,silent,vfr}.mp4`` (silent: no audio; vfr: variable rate)."""
    d = tmp_path_factory.mktemp("tiny_videos")
    write_tiny_video(d / "videos" / "a.mp4", 2.0)
    write_tiny_video(d / "videos" / "b.mp4", 1.5)
    write_tiny_video(d / "videos" / "c.mp4", 1.0)
    write_tiny_video(d / "videos" / "silent.mp4", 1.5, audio=False)
    write_video(
        d / "videos" / "vfr.mp4",
        tiny_frames(len(VFR_TIMES)),
        fps=10,
        audio=tiny_tone(1.7),
        sample_rate=TINY_SR,
        timestamps=VFR_TIMES,
    )
    return d


def _tiny_clips() -> pd.DataFrame:
    rows = [
        ("c0", "videos/a.mp4", 0.0, 1.0, [], "train"),
        ("c1", "videos/a.mp4", 1.0, 2.0, ["scam"], "train"),
        ("c2", "videos/b.mp4", 0.0, 1.5, ["weapons", "scam"], "val"),
        ("c3", "videos/c.mp4", 0.0, 1.0, [], "test"),
        ("c4", "videos/silent.mp4", 0.0, 1.5, [], "traffic"),
        ("c5", "videos/vfr.mp4", 0.0, 1.5, ["hate_speech"], "train"),
    ]
    return pd.DataFrame(
        {
            "clip_id": [r[0] for r in rows],
            "video_uri": [r[1] for r in rows],
            "start_s": [r[2] for r in rows],
            "end_s": [r[3] for r in rows],
            "title": [f"title of {r[0]}" for r in rows],
            "ocr": ["" for _ in rows],
            "asr": [f"speech in {r[0]}" for r in rows],
            "labels": [r[4] for r in rows],
            "event_timestamp": pd.date_range("2026-11-01", periods=len(rows), freq="h", tz="UTC"),
            "source": ["upload"] * len(rows),
            "split": [r[5] for r in rows],
        }
    )


def _tiny_pairs() -> pd.DataFrame:
    rows = [
        ("p0", "c0", "c1", 0, "none", "train"),
        ("p1", "c2", "c3", 1, "visual", "val"),
        ("p2", "c4", "c5", 0, "none", "traffic"),
        ("p3", "c1", "c4", 1, "audio", "train"),
    ]
    return pd.DataFrame(
        {
            "pair_id": [r[0] for r in rows],
            "query_clip_id": [r[1] for r in rows],
            "candidate_clip_id": [r[2] for r in rows],
            "label": [r[3] for r in rows],
            "reason": [r[4] for r in rows],
            "event_timestamp": pd.date_range("2026-11-02", periods=len(rows), freq="h", tz="UTC"),
            "split": [r[5] for r in rows],
        }
    )


@dataclass
class TinyRoot:
    """A data root under construction: its path and the manifests as pandas frames."""

    path: Path
    clips: pd.DataFrame
    pairs: pd.DataFrame

    @property
    def clips_path(self) -> Path:
        return self.path / CLIPS_FILE

    @property
    def pairs_path(self) -> Path:
        return self.path / PAIRS_FILE

    def write(self) -> None:
        """Write both frames as Parquet manifests (Arrow types inferred from pandas)."""
        self.clips_path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pandas(self.clips, preserve_index=False), self.clips_path)
        pq.write_table(pa.Table.from_pandas(self.pairs, preserve_index=False), self.pairs_path)

    def write_csv(self, name: str, frame: pd.DataFrame) -> Path:
        """Write ``frame`` as ``manifests/<name>.csv`` (lists as ``a|b``, timestamps ISO 8601)."""
        out = frame.copy()
        for column in out.columns:
            if out[column].map(lambda v: isinstance(v, list)).any():
                out[column] = out[column].map("|".join)
            elif isinstance(out[column].dtype, pd.DatetimeTZDtype):
                out[column] = out[column].map(pd.Timestamp.isoformat)
        path = self.path / "manifests" / f"{name}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        pacsv.write_csv(pa.Table.from_pandas(out.astype(str), preserve_index=False), path)
        return path


@pytest.fixture
def tiny_root(tmp_path: Path, tiny_videos: Path) -> TinyRoot:
    """A fresh data root: 6 clips over 5 real MP4s (one silent, one VFR) and 4 pairs."""
    root = tmp_path / "root"
    shutil.copytree(tiny_videos, root)
    tr = TinyRoot(root, _tiny_clips(), _tiny_pairs())
    tr.write()
    return tr
