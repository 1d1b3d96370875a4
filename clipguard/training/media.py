"""Decoded media for the MatchLM teacher: decode once, train and score many times.

The teacher reads raw pixels (SigLIP) and a log-mel spectrogram (its own, trainable
Whisper), not the frozen encoders' cached features. This cache holds, for every clip a
set of pairs needs:

* the frames sampled at ``cfg.media.fps``, decoded straight to the SigLIP input size
  (uint8, T x S x S x 3);
* the Whisper log-mel of the clip's first ``audio_window_seconds`` and the mask of the
  encoder states that cover real audio — exactly what
  :meth:`clipguard.models.matchlm.MatchLMProcessor.audio_to_features` returns, stored
  float16, because computing it costs more than the tiny teacher's forward pass;
* the clip text (title + OCR + ASR, :func:`clipguard.encoders.text.clip_text`).

(:mod:`clipguard.encoders.cache`, the pretraining cache, keeps only pooled frozen-Whisper
vectors and frames at ``cfg.media.frame_size``: the teacher needs the spectrogram and the
SigLIP size, so it has its own cache built with the same decoder,
:func:`clipguard.encoders.inputs.decode_batches`.)

The cache lives in ``<cache_root>/<key>/`` where the key hashes the data version, the
media settings, the teacher's input format and the clip set; it is published by renaming
a finished temporary directory. A clip that does not decode is left out and listed in
``failed`` (its pairs are skipped by the callers, with a warning).

:class:`TeacherPairs` turns pairs over this cache into MatchLM's forward inputs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from clipguard.config import Config
from clipguard.core.io import config_hash, publish_tensor_dir
from clipguard.data.schema import data_version
from clipguard.encoders.inputs import decode_batches, read_accepted
from clipguard.models.frames import allocate_pair_frames
from clipguard.models.matchlm import MatchLMProcessor
from clipguard.training.data import LabelledPairs

log = logging.getLogger(__name__)

_INDEX = "index.json"
_TENSORS = "media.safetensors"


@dataclass
class TeacherMedia:
    """Decoded clips in the teacher's input format, indexed by clip id."""

    key: str
    clip_ids: list[str]
    frames: list[torch.Tensor]
    """per clip: T x S x S x 3 uint8 at the SigLIP size"""
    mel: torch.Tensor
    """N x mel_bins x (2 x audio_positions) float16 Whisper log-mel"""
    audio_mask: torch.Tensor
    """N x audio_positions bool, True at encoder states over real audio"""
    texts: list[str]
    failed: dict[str, str]
    """clip_id -> reason, for clips that did not decode (left out)"""

    def __post_init__(self) -> None:
        self.index = {c: i for i, c in enumerate(self.clip_ids)}

    def __contains__(self, clip_id: object) -> bool:
        return clip_id in self.index


def media_key(root: str | Path, cfg: Config, processor: MatchLMProcessor, clip_ids: Sequence[str]) -> str:
    """The cache key of (data version, decoding settings, teacher input format, clip set)."""
    config = processor.config
    return "m" + config_hash(
        {
            "data_version": data_version(root),
            "fps": cfg.media.fps,
            "sample_rate": cfg.media.sample_rate,
            "image_size": config.image_size,
            "mel_bins": int(config.audio.num_mel_bins),
            "audio_window_seconds": config.audio_window_seconds,
            "clips": config_hash(sorted(set(clip_ids)), length=16),
        }
    )


def _load(path: Path, key: str) -> TeacherMedia:
    from safetensors.torch import load_file

    index = json.loads((path / _INDEX).read_text())
    t = load_file(str(path / _TENSORS))
    ids = index["clip_ids"]
    return TeacherMedia(
        key=key,
        clip_ids=ids,
        frames=[t[f"frames/{i}"] for i in range(len(ids))],
        mel=t["mel"],
        audio_mask=t["audio_mask"].bool(),
        texts=index["texts"],
        failed=index["failed"],
    )


def load_or_build_media(
    root: str | Path,
    cfg: Config,
    processor: MatchLMProcessor,
    clip_ids: Sequence[str],
    cache_root: str | Path,
    progress: bool = True,
) -> TeacherMedia:
    """The teacher media of ``clip_ids``: loaded when cached, else decoded, converted and written."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    key = media_key(root, cfg, processor, clip_ids)
    path = Path(cache_root) / key
    if (path / _INDEX).is_file():
        return _load(path, key)

    wanted = set(clip_ids)
    clips = read_accepted(root)
    clips = clips[clips["clip_id"].isin(wanted)].sort_values("clip_id").reset_index(drop=True)
    unknown = wanted - set(clips["clip_id"])
    if unknown:
        raise KeyError(f"{len(unknown)} clip(s) are not accepted clips of {root}: {sorted(unknown)[:5]}")
    media = cfg.media.model_copy(update={"frame_size": processor.config.image_size})
    ids: list[str] = []
    frames: list[torch.Tensor] = []
    mels: list[torch.Tensor] = []
    masks: list[torch.Tensor] = []
    texts: list[str] = []
    failed: dict[str, str] = {}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, disable=not progress) as bar:
        task = bar.add_task(f"decoding {len(clips)} clips for the teacher", total=len(clips))
        for items in decode_batches(root, clips, media, cfg.features.batch_size, cfg.features.prefetch):
            for it in items:
                if it.clip is None:
                    failed[it.clip_id] = f"{it.error.reason}: {it.error}" if it.error else "decode_error"
                    log.warning("teacher media: %s left out (%s)", it.clip_id, it.error)
                    continue
                mel, mask = processor.audio_to_features(it.clip.audio if it.clip.has_audio else None)
                ids.append(it.clip_id)
                frames.append(torch.from_numpy(it.clip.frames))
                mels.append(mel.half())
                masks.append(mask)
                texts.append(it.text)
            bar.advance(task, len(items))
    if not ids:
        raise ValueError(f"{root}: none of the {len(clips)} clips could be decoded for the teacher")

    tensors = {f"frames/{i}": f for i, f in enumerate(frames)}
    tensors.update(mel=torch.stack(mels), audio_mask=torch.stack(masks).to(torch.uint8))
    publish_tensor_dir(path, tensors, {"clip_ids": ids, "texts": texts, "failed": failed}, _TENSORS, _INDEX)
    return _load(path, key)


class TeacherPairs(LabelledPairs):
    """Pairs over :class:`TeacherMedia`; items are row positions, :meth:`collate` builds the
    keyword arguments of :meth:`MatchLMForPairClassification.forward` (plus ``positions``).

    The batch is what :class:`MatchLMProcessor` builds from the decoded media (same frame
    allocation, pixels, pair sequence and padding), with the log-mel taken from the cache.
    """

    query_rows: list[int]
    candidate_rows: list[int]

    def __init__(
        self, pairs: pd.DataFrame, media: TeacherMedia, processor: MatchLMProcessor, labels: Mapping[str, np.ndarray]
    ) -> None:
        missing = sorted({c for c in (*pairs["query_clip_id"], *pairs["candidate_clip_id"]) if c not in media})
        if missing:
            raise KeyError(f"{len(missing)} clip(s) of these pairs are not in the teacher media: {missing[:5]}")
        rows = media.index
        super().__init__(pairs, [rows[c] for c in pairs["query_clip_id"]], [rows[c] for c in pairs["candidate_clip_id"]], labels)
        self.media = media
        self.processor = processor

    def collate(self, positions: Sequence[int]) -> dict[str, Any]:
        config = self.processor.config
        media = self.media
        sequences: list[list[int]] = []
        videos: list[tuple[torch.Tensor, torch.Tensor]] = []
        rows: list[tuple[int, int]] = []
        for p in positions:
            q, c = self.query_rows[p], self.candidate_rows[p]
            fq, fc = media.frames[q], media.frames[c]
            keep = allocate_pair_frames(len(fq), len(fc), config.frame_budget, config.min_frames)
            videos.append(
                (self.processor.frames_to_pixels(fq[list(keep.query)]), self.processor.frames_to_pixels(fc[list(keep.candidate)]))
            )
            sequences.append(self.processor.sequence_ids(*keep.counts, media.texts[q], media.texts[c]))
            rows.append((q, c))
        flat = torch.tensor(rows, dtype=torch.long)
        idx = torch.as_tensor(list(positions), dtype=torch.long)
        return {
            "positions": idx,
            **self.processor.pad_batch(sequences, videos),
            "audio_features": media.mel[flat].float(),
            "audio_mask": media.audio_mask[flat],
            "labels": {t: v[idx] for t, v in self.labels.items()},
        }
