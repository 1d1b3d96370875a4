"""A tiny synthetic RCI world for the training and evaluation tests.

``build_rci_root`` writes a validated data root (real MP4s, 1 fps-decodable, with audio;
clip/pair manifests with the corpus's RCI columns; ``corpus.json`` with its edit
vocabulary) and a feature directory in the layout of
:mod:`clipguard.features.store_format` whose tokens make copies look alike (a copy's
tokens are its source's plus noise), so that a few training steps already learn
something. ``TINY_RCI_OVERRIDES`` sizes the models to match (a few milliseconds a step).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from clipguard.features.store_format import CLIP_FEATURES_SCHEMA, FEATURES_FILE, MANIFEST_FILE, array_key, shard_name

VISUAL_DIM, AUDIO_DIM, TEXT_DIM = 12, 10, 14
EDITS = {"train": ["crop", "hflip"], "heldout": ["rotate"], "audio": ["volume"], "trend": []}

TINY_RCI_OVERRIDES = {
    "models.tasks": {"rci": 2, "reason": 4, "edit": 3},
    "models.teacher.audio_window_seconds": 1,
    "models.teacher.frame_budget": 4,
    "models.teacher.min_frames": 2,
    "models.teacher.max_text_tokens": 4,
    "models.teacher.vision_image_size": 32,
    "models.teacher.text_hidden_size": 32,
    "models.teacher.text_intermediate_size": 64,
    "models.teacher.text_layers": 1,
    "models.teacher.vision_hidden_size": 32,
    "models.teacher.vision_intermediate_size": 64,
    "models.teacher.vision_layers": 1,
    "models.teacher.audio_d_model": 32,
    "models.teacher.audio_ffn_dim": 64,
    "models.teacher.audio_layers": 1,
    "models.teacher.head_hidden_size": 16,
    "models.teacher.epochs": 1,
    "models.teacher.batch_size": 8,
    "models.student.max_visual_tokens": 4,
    "models.student.max_audio_tokens": 3,
    "models.student.max_text_tokens": 5,
    "models.student.visual_dim": VISUAL_DIM,
    "models.student.audio_dim": AUDIO_DIM,
    "models.student.text_dim": TEXT_DIM,
    "models.student.hidden_size": 16,
    "models.student.grid_size": 4,
    "models.student.conv_channels": 4,
    "models.student.resnet_widths": [4, 4, 8, 8],
    "models.student.head_hidden_size": 8,
    "models.student.epochs": 2,
    "models.student.batch_size": 8,
    "models.distill.epochs": 1,
    "models.training.torch_threads": 1,
    "features.batch_size": 8,
    "features.prefetch": 0,
}


@dataclass
class RCIWorld:
    root: Path
    features_dir: Path
    clips: pd.DataFrame
    pairs: pd.DataFrame


def _video(path: Path, level: int, seconds: float, seed: int) -> None:
    from clipguard.media.writer import write_video

    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    frames = [
        np.kron(np.clip(base.astype(int) + level + 8 * i, 0, 255).astype(np.uint8), np.ones((8, 8, 1), np.uint8))
        for i in range(int(seconds * 2))
    ]
    t = np.arange(int(seconds * 16_000)) / 16_000
    audio = (0.2 * np.sin(2 * np.pi * (200 + 50 * seed) * t)).astype(np.float32)
    write_video(path, frames, fps=2, audio=audio, sample_rate=16_000)


def build_rci_root(base: Path, sources: int = 8, with_media: bool = True) -> RCIWorld:
    """Write the data root ``base/root`` and features ``base/features/e000test``; return both.

    ``sources`` source clips per split (train/val/test); each source has one copy clip.
    Positives pair a source with its copy; negatives pair sources with other sources or copies.
    """
    rng = np.random.default_rng(0)
    root = base / "root"
    clip_rows, pair_rows = [], []
    splits = ["train", "val", "test"]
    reasons = ["visual", "audio", "text"]
    content: dict[str, np.ndarray] = {}
    for s_i, split in enumerate(splits):
        ids = []
        for k in range(sources):
            src = f"{split}_src{k}"
            cpy = f"{split}_cpy{k}"
            ids.append((src, cpy))
            for clip_id, of in ((src, None), (cpy, src)):
                uri = f"videos/{clip_id}.mp4"
                if with_media:
                    _video(root / uri, 10 * k, 2.0 + (k % 2), seed=100 * s_i + k)
                clip_rows.append(
                    {
                        "clip_id": clip_id,
                        "video_uri": uri,
                        "start_s": 0.0,
                        "end_s": 2.0 + (k % 2),
                        "title": f"clip {of or clip_id}",
                        "ocr": "",
                        "asr": f"speech {k}",
                        "labels": [],
                        "event_timestamp": pd.Timestamp("2026-11-01", tz="UTC") + pd.Timedelta(hours=len(clip_rows)),
                        "source": "upload",
                        "split": split,
                    }
                )
                key = of or clip_id
                if key not in content:
                    content[key] = rng.standard_normal(VISUAL_DIM + AUDIO_DIM + TEXT_DIM).astype(np.float32)
        for k, (src, cpy) in enumerate(ids):
            edit = ["crop", "hflip", "rotate", "volume"][k % 4]
            pair_rows.append((src, cpy, 1, reasons[k % 3], split, edit, edit == "rotate", False, False))
            for j in (1, 2, 3):
                other_src, other_cpy = ids[(k + j) % sources]
                pair_rows.append((src, other_cpy if j % 2 else other_src, 0, "none", split, "", False, False, j == 1))
    clips = pd.DataFrame(clip_rows)
    pairs = pd.DataFrame(
        [
            {
                "pair_id": f"p{i:04d}",
                "query_clip_id": q,
                "candidate_clip_id": c,
                "label": y,
                "reason": r,
                "event_timestamp": pd.Timestamp("2026-11-02", tz="UTC") + pd.Timedelta(minutes=i),
                "split": sp,
                "edit_types": e,
                "heldout_edit": he,
                "heldout_source": sp == "test" and i % 2 == 0,
                "hard_negative": hn,
                "trend_edit": te,
            }
            for i, (q, c, y, r, sp, e, he, te, hn) in enumerate(pair_rows)
        ]
    )
    (root / "validated").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(clips, preserve_index=False), root / "validated" / "clips.parquet")
    pq.write_table(pa.Table.from_pandas(pairs, preserve_index=False), root / "validated" / "pairs.parquet")
    (root / "corpus.json").write_text(json.dumps({"edit_types": EDITS}))

    features = base / "features" / "e000test"
    arrays: dict[str, torch.Tensor] = {}
    rows = []
    gen = torch.Generator().manual_seed(1)
    for row in clip_rows:
        clip_id = row["clip_id"]
        src = clip_id.replace("_cpy", "_src")
        c = torch.from_numpy(content[src])
        n_vis, n_aud, n_txt = 3 + len(clip_id) % 3, 2 + len(clip_id) % 2, 4 + len(clip_id) % 3
        vis = c[:VISUAL_DIM].expand(n_vis, -1) + 0.3 * torch.randn(n_vis, VISUAL_DIM, generator=gen)
        aud = c[VISUAL_DIM : VISUAL_DIM + AUDIO_DIM].expand(n_aud, -1) + 0.3 * torch.randn(n_aud, AUDIO_DIM, generator=gen)
        txt = c[VISUAL_DIM + AUDIO_DIM :].expand(n_txt, -1) + 0.3 * torch.randn(n_txt, TEXT_DIM, generator=gen)
        arrays[array_key(clip_id, "visual")] = vis.half()
        arrays[array_key(clip_id, "audio")] = aud.half()
        arrays[array_key(clip_id, "text")] = txt.half()
        rows.append(
            {
                "clip_id": clip_id,
                "video_uri": row["video_uri"],
                "event_timestamp": row["event_timestamp"],
                "created_timestamp": row["event_timestamp"],
                "encoder_version": "e000test",
                "data_version": "dtest",
                "visual_pooled": vis.mean(0).numpy(),
                "audio_pooled": aud.mean(0).numpy(),
                "text_pooled": txt.mean(0).numpy(),
                "clip_embedding": vis.mean(0).numpy(),
                "n_frames": n_vis,
                "n_audio_tokens": n_aud,
                "n_text_tokens": n_txt,
                "has_audio": True,
                "array_file": shard_name(0),
            }
        )
    from safetensors.torch import save_file

    (features / "arrays").mkdir(parents=True, exist_ok=True)
    save_file(arrays, str(features / shard_name(0)))
    pq.write_table(pa.Table.from_pylist(rows, schema=CLIP_FEATURES_SCHEMA), features / FEATURES_FILE)
    (features / MANIFEST_FILE).write_text(json.dumps({"encoder_version": "e000test"}))
    return RCIWorld(root, features, clips, pairs)
