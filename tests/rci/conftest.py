"""RCI serving fixtures: tiny untrained encoders, a tiny random student, real photo videos.

The encoders are built from the tiny test config (random Swin/Whisper, the real MiniLM) and
saved as an encoder directory without pretraining; the student is a random MatchLite sized
for those encoders. Scores are therefore meaningless, but every step of the serving path
(decode, encode, retrieve, score, lineage checks, per-row errors) is the real one.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from clipguard.config import Config
from clipguard.data.schema import CLIP_COLUMNS, VALIDATED_DIR, arrow_schema
from clipguard.encoders.bundle import EncoderBundle
from clipguard.media.writer import write_video
from clipguard.models.matchlite import MatchLiteConfig, MatchLiteForPairClassification
from tests.baselines.conftest import pan, photo
from tests.encoders.conftest import tiny_config

ENCODER_VERSION = "etest000rci"
SR = 16_000
STUDENT_OVERRIDES = {
    "models.student.visual_dim": 160,  # tiny Swin: embed_dim 16, two stages -> 32, x (1 + 2 x 2 regions)
    "models.student.audio_dim": 32,
    "models.student.text_dim": 384,
    "models.student.max_visual_tokens": 4,
    "models.student.max_audio_tokens": 4,
    "models.student.max_text_tokens": 8,
    "models.student.hidden_size": 16,
    "models.student.bixt_heads": 4,
    "models.student.conv_channels": 4,
    "models.student.grid_size": 4,
    "models.student.resnet_widths": [4, 4, 8, 8],
    "models.student.head_hidden_size": 8,
    "rci.batch_size": 4,
    "features.prefetch": 0,
}
VIDEOS = {"astronaut": 220.0, "coffee": 330.0, "rocket": 440.0, "horse": 550.0}


def rci_config(work_dir: Path, **extra) -> Config:
    return tiny_config(**STUDENT_OVERRIDES, work_dir=str(work_dir), **extra)


def _tone(seconds: float, freq: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture(scope="session")
def rci_media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``videos/<photo>.mp4`` (3-s pans with a tone), ``astronaut_copy.mp4`` (re-encode), ``corrupt.mp4``."""
    d = tmp_path_factory.mktemp("rci_media")
    for name, freq in VIDEOS.items():
        write_video(d / "videos" / f"{name}.mp4", pan(photo(name), 30), fps=10, audio=_tone(3.0, freq), sample_rate=SR)
    write_video(
        d / "videos" / "astronaut_copy.mp4", pan(photo("astronaut"), 30), fps=10, audio=_tone(3.0, 220.0), sample_rate=SR, crf=35
    )
    (d / "videos" / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    return d


@pytest.fixture(scope="session")
def rci_env(tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, Path, Path]:
    """(config, encoder directory, student directory) under one work_dir."""
    work = tmp_path_factory.mktemp("rci_work")
    cfg = rci_config(work)
    enc_dir = work / "encoders" / ENCODER_VERSION
    EncoderBundle.from_config(cfg, vision_seed=0).save(enc_dir, {"version": ENCODER_VERSION, "mode": "untrained"})
    torch.manual_seed(0)
    student = MatchLiteForPairClassification(MatchLiteConfig.from_settings(cfg.models)).eval()
    student_dir = student.save_pretrained(work / "student")
    (student_dir / "training.json").write_text(json.dumps({"version": "stest", "features_version": ENCODER_VERSION}))
    (student_dir / "threshold.json").write_text(json.dumps({"threshold": 0.5}))
    return cfg, enc_dir, student_dir


def validated_root(root: Path, media: Path, names: list[str]) -> Path:
    """A validated root whose clips are the first 3 s of ``videos/<name>.mp4``."""
    import shutil

    shutil.copytree(media / "videos", root / "videos")
    clips = pd.DataFrame(
        {
            "clip_id": [f"clip_{n}" for n in names],
            "video_uri": [f"videos/{n}.mp4" for n in names],
            "start_s": 0.0,
            "end_s": 3.0,
            "title": [f"a video of {n}" for n in names],
            "ocr": "",
            "asr": "",
            "labels": [[] for _ in names],
            "event_timestamp": pd.date_range("2026-11-01", periods=len(names), freq="h", tz="UTC"),
            "source": "upload",
            "split": "train",
        }
    )
    (root / VALIDATED_DIR).mkdir(parents=True)
    pq.write_table(
        pa.Table.from_pandas(clips, schema=arrow_schema(CLIP_COLUMNS), preserve_index=False),
        root / VALIDATED_DIR / "clips.parquet",
    )
    return root
