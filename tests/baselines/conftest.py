"""A tiny validated root for the hash baselines: real photographs panned into short MP4s.

``src`` pans over scikit-image's astronaut; ``reencode`` is the same frames at a much lower
quality (crf 38); ``flip`` the frames mirrored left-right; ``other`` a pan over a different
photograph (coffee); ``gone`` points at a file that does not exist; ``corrupt`` at a file
that is not a video.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clipguard.config import Config, load_config
from clipguard.data.schema import CLIP_COLUMNS, PAIR_COLUMNS, VALIDATED_DIR, arrow_schema
from clipguard.media.writer import write_video

W, H, FPS, SECONDS = 128, 96, 10, 3


def photo(name: str) -> np.ndarray:
    from skimage import data

    img = getattr(data, name)()
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = img[..., :3]
    if img.dtype != np.uint8:  # e.g. horse is boolean
        img = (255 * (img.astype(np.float64) / max(1.0, float(img.max())))).astype(np.uint8)
    return np.ascontiguousarray(img)


def pan(img: np.ndarray, n: int = SECONDS * FPS) -> list[np.ndarray]:
    """``n`` W x H frames of a slow pan across ``img``."""
    from PIL import Image

    h, w = img.shape[:2]
    side = min(h, w) * 3 // 4
    frames = []
    for i in range(n):
        x0 = int((w - side) * i / max(1, n - 1) * 0.5)
        crop = img[(h - side) // 2 : (h - side) // 2 + side, x0 : x0 + side]
        frames.append(np.asarray(Image.fromarray(crop).resize((W, H), Image.BILINEAR)))
    return frames


def build_hash_root(root: Path) -> Path:
    """Write the videos and ``validated/{clips,pairs}.parquet`` under ``root``."""
    src = pan(photo("astronaut"))
    write_video(root / "videos/src.mp4", src, fps=FPS)
    write_video(root / "videos/reencode.mp4", src, fps=FPS, crf=38)
    write_video(root / "videos/flip.mp4", [np.ascontiguousarray(f[:, ::-1]) for f in src], fps=FPS)
    write_video(root / "videos/other.mp4", pan(photo("coffee")), fps=FPS)
    (root / "videos/corrupt.mp4").write_bytes(bytes(range(256)) * 16)
    names = ["src", "reencode", "flip", "other", "gone", "corrupt"]
    clips = pd.DataFrame(
        {
            "clip_id": names,
            "video_uri": [f"videos/{n}.mp4" for n in names],
            "start_s": 0.0,
            "end_s": float(SECONDS),
            "title": "",
            "ocr": "",
            "asr": "",
            "labels": [[] for _ in names],
            "event_timestamp": pd.date_range("2026-11-01", periods=len(names), freq="h", tz="UTC"),
            "source": "upload",
            "split": "test",
        }
    )
    pairs = pd.DataFrame(
        {
            "pair_id": ["p_reencode", "p_flip", "p_other", "p_gone", "p_corrupt"],
            "query_clip_id": ["reencode", "flip", "other", "gone", "corrupt"],
            "candidate_clip_id": ["src", "src", "src", "src", "src"],
            "label": [1, 1, 0, 1, 0],
            "reason": ["visual", "visual", "none", "visual", "none"],
            "event_timestamp": pd.date_range("2026-11-02", periods=5, freq="h", tz="UTC"),
            "split": "test",
        }
    )
    out = root / VALIDATED_DIR
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(clips, schema=arrow_schema(CLIP_COLUMNS), preserve_index=False), out / "clips.parquet")
    pq.write_table(pa.Table.from_pandas(pairs, schema=arrow_schema(PAIR_COLUMNS), preserve_index=False), out / "pairs.parquet")
    return root


@pytest.fixture(scope="session")
def hash_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_hash_root(tmp_path_factory.mktemp("hash_root"))


@pytest.fixture
def hash_root(tmp_path: Path, hash_master: Path) -> Path:
    """A fresh copy of the hash root (tests may change its media)."""
    root = tmp_path / "root"
    shutil.copytree(hash_master, root)
    return root


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    """The local profile with ``work_dir`` (hash caches) in the test's directory."""
    return load_config("local", {"work_dir": str(tmp_path / "runs")})
