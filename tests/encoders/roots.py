"""A tiny *validated* data root for encoder and feature tests (real MP4s, seconds to build).

Eight short videos over real scikit-image photographs (a slow pan, a tone per video, one
silent), plus two edited copies (mirrored, cropped) in the test split with positive pairs
pointing back at their originals. ``validated/`` is written directly in the contract's
schema, so these tests do not depend on the validator.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from clipguard.data.schema import CLIP_COLUMNS, PAIR_COLUMNS, VALIDATED_DIR, arrow_schema
from clipguard.media.writer import write_video

SR = 16_000
FPS = 10
W, H = 64, 48
IMAGES = ("astronaut", "coffee", "chelsea", "rocket", "camera", "coins", "horse", "moon")
TEST_IMAGES = ("chelsea", "horse", "moon")
TEXTS = (
    "astronaut in orange suit smiling",
    "a cup of coffee on a saucer",
    "a cat with green eyes",
    "rocket launch into the sky",
    "man with a camera on a tripod",
    "old coins on a table",
    "a horse running in a field",
    "the surface of the moon",
)


def _image(name: str) -> np.ndarray:
    from skimage import data

    img = getattr(data, name)()
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = img[..., :3]
    if img.dtype != np.uint8:
        img = (255 * (img.astype(np.float64) / max(1.0, float(img.max())))).astype(np.uint8)
    return img


def _pan(img: np.ndarray, n: int) -> list[np.ndarray]:
    """``n`` frames of W x H panning slowly across ``img``."""
    from PIL import Image

    h, w = img.shape[:2]
    side = min(h, w) * 3 // 4
    out = []
    for i in range(n):
        x0 = int((w - side) * i / max(1, n - 1) * 0.5)
        crop = img[(h - side) // 2 : (h - side) // 2 + side, x0 : x0 + side]
        out.append(np.asarray(Image.fromarray(crop).resize((W, H), Image.BILINEAR)))
    return out


def _tone(seconds: float, freq: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def build_validated_root(root: Path, seconds: float = 2.0) -> Path:
    """Write the videos, ``validated/clips.parquet`` and ``validated/pairs.parquet`` under ``root``."""
    n = int(seconds * FPS)
    clips = []
    frames_of: dict[str, list[np.ndarray]] = {}
    for i, name in enumerate(IMAGES):
        frames = _pan(_image(name), n)
        frames_of[name] = frames
        silent = i == 7
        uri = f"videos/{name}.mp4"
        write_video(root / uri, frames, fps=FPS, audio=None if silent else _tone(seconds, 220.0 * (i + 1)), sample_rate=SR)
        split = "test" if name in TEST_IMAGES else "train"
        clips.append((f"clip_{name}", uri, TEXTS[i], split))
    copies = {"mirror": ("chelsea", lambda f: f[:, ::-1]), "zoom": ("horse", lambda f: _zoom(f))}
    for tag, (name, edit) in copies.items():
        uri = f"videos/{name}_{tag}.mp4"
        idx = IMAGES.index(name)
        write_video(
            root / uri,
            [np.ascontiguousarray(edit(f)) for f in frames_of[name]],
            fps=FPS,
            audio=_tone(seconds, 220.0 * (idx + 1)),
            sample_rate=SR,
        )
        clips.append((f"clip_{name}_{tag}", uri, TEXTS[idx], "test"))
    clip_df = pd.DataFrame(
        {
            "clip_id": [c[0] for c in clips],
            "video_uri": [c[1] for c in clips],
            "start_s": 0.0,
            "end_s": seconds,
            "title": [c[2] for c in clips],
            "ocr": "",
            "asr": "",
            "labels": [[] for _ in clips],
            "event_timestamp": pd.date_range("2026-11-01", periods=len(clips), freq="h", tz="UTC"),
            "source": "upload",
            "split": [c[3] for c in clips],
        }
    )
    pair_df = pd.DataFrame(
        {
            "pair_id": ["p0", "p1", "p2"],
            "query_clip_id": ["clip_chelsea_mirror", "clip_horse_zoom", "clip_rocket"],
            "candidate_clip_id": ["clip_chelsea", "clip_horse", "clip_camera"],
            "label": [1, 1, 0],
            "reason": ["visual", "visual", "none"],
            "event_timestamp": pd.date_range("2026-11-02", periods=3, freq="h", tz="UTC"),
            "split": ["test", "test", "train"],
        }
    )
    out = root / VALIDATED_DIR
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(clip_df, schema=arrow_schema(CLIP_COLUMNS), preserve_index=False), out / "clips.parquet")
    pq.write_table(pa.Table.from_pandas(pair_df, schema=arrow_schema(PAIR_COLUMNS), preserve_index=False), out / "pairs.parquet")
    return root


def _zoom(frame: np.ndarray) -> np.ndarray:
    from PIL import Image

    h, w = frame.shape[:2]
    crop = frame[h // 8 : h - h // 8, w // 8 : w - w // 8]
    return np.asarray(Image.fromarray(crop).resize((w, h), Image.BILINEAR))
