"""Decoded-clip cache for pretraining: decode once, train many epochs (and seeds).

For the clips of the requested splits it stores the sampled frames (uint8, as decoded at
``cfg.media``), the first :data:`CACHED_AUDIO_SECONDS` of the soundtrack (int16; audio
pretraining augments it) and the outputs of the encoders as built, before any training:
the Whisper pooled audio vector and the MiniLM sentence embedding. The cache lives in
``<cache_root>/<key>/`` where the key hashes the data version, the media settings, the
splits and the frozen encoders' content fingerprints, so any change rebuilds it and
identical inputs reuse it. It is published by renaming a finished temporary directory.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from clipguard.config import Config
from clipguard.core.io import config_hash, module_fingerprint, publish_tensor_dir
from clipguard.data.schema import data_version
from clipguard.encoders.audio import AudioEncoder
from clipguard.encoders.inputs import decode_batches, read_accepted
from clipguard.encoders.text import TextEncoder

log = logging.getLogger(__name__)

_INDEX = "index.json"
_TENSORS = "clips.safetensors"
_FORMAT = 2  # 2: the soundtrack is kept
CACHED_AUDIO_SECONDS = 10.0
"""Seconds of each clip's soundtrack kept for audio pretraining (int16, ~32 KB/s at 16 kHz)."""


@dataclass
class ClipCache:
    """Decoded clips of some splits, in manifest order (sorted by clip_id)."""

    key: str
    clip_ids: list[str]
    splits: list[str]
    frames: list[torch.Tensor]
    """per clip: T x H x W x 3 uint8"""
    audio: torch.Tensor
    """N x D_a frozen-Whisper pooled vectors (zeros without audio)"""
    has_audio: torch.Tensor
    """N bool"""
    waves: list[torch.Tensor]
    """per clip: the first CACHED_AUDIO_SECONDS of mono audio, int16 (empty without audio)"""
    text: torch.Tensor
    """N x 384 L2-normalised MiniLM sentence embeddings"""
    failed: dict[str, str]
    """clip_id -> reason, for accepted clips that did not decode (left out)"""

    def select(self, split: str) -> list[int]:
        """Row indices of the clips of ``split``."""
        return [i for i, s in enumerate(self.splits) if s == split]


def cache_key(root: str | Path, cfg: Config, splits: tuple[str, ...], audio: AudioEncoder, text: TextEncoder) -> str:
    """The cache key of (data version, media settings, splits, frozen encoders)."""
    return "c" + config_hash(
        {
            "format": _FORMAT,
            "data_version": data_version(root),
            "media": cfg.media.model_dump(mode="json"),
            "splits": sorted(splits),
            "audio": module_fingerprint(audio.encoder),
            "text": text.fingerprint,
        }
    )


def _load(path: Path, key: str) -> ClipCache:
    from safetensors.torch import load_file

    index = json.loads((path / _INDEX).read_text())
    t = load_file(str(path / _TENSORS))
    return ClipCache(
        key=key,
        clip_ids=index["clip_ids"],
        splits=index["splits"],
        frames=[t[f"frames/{i}"] for i in range(len(index["clip_ids"]))],
        audio=t["audio"].float(),
        has_audio=t["has_audio"].bool(),
        waves=[t[f"wave/{i}"] for i in range(len(index["clip_ids"]))],
        text=t["text"].float(),
        failed=index["failed"],
    )


def load_or_build_cache(
    root: str | Path,
    cfg: Config,
    cache_root: str | Path,
    splits: tuple[str, ...],
    audio: AudioEncoder,
    text: TextEncoder,
    progress: bool = True,
) -> ClipCache:
    """The cache of ``splits`` for these inputs: loaded when present, else decoded and written."""
    from rich.progress import Progress

    key = cache_key(root, cfg, splits, audio, text)
    path = Path(cache_root) / key
    if (path / _INDEX).is_file():
        return _load(path, key)

    clips = read_accepted(root)
    clips = clips[clips["split"].isin(splits)].sort_values("clip_id").reset_index(drop=True)
    if clips.empty:
        raise ValueError(f"{root}: no accepted clips in splits {splits}")
    ids: list[str] = []
    split_of = dict(zip(clips["clip_id"], clips["split"]))
    frames: list[torch.Tensor] = []
    audio_vecs: list[torch.Tensor] = []
    has_audio: list[bool] = []
    waves: list[torch.Tensor] = []
    keep = round(CACHED_AUDIO_SECONDS * cfg.media.sample_rate)
    text_vecs: list[torch.Tensor] = []
    failed: dict[str, str] = {}
    batch = max(1, cfg.features.batch_size)
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task(f"decoding {len(clips)} clips for pretraining", total=len(clips))
        for items in decode_batches(root, clips, cfg.media, batch, prefetch=cfg.features.prefetch):
            ok = [(it, it.clip) for it in items if it.clip is not None]
            for it in items:
                if it.error is not None:
                    failed[it.clip_id] = f"{it.error.reason}: {it.error}"
                    log.warning("pretraining cache: %s left out (%s)", it.clip_id, it.error)
            if ok:
                feats = audio.encode_clips([c.audio for _, c in ok], [c.has_audio for _, c in ok])
                txt = text.encode([it.text for it, _ in ok]).pooled
                for (it, c), a, t in zip(ok, feats, txt):
                    ids.append(it.clip_id)
                    frames.append(torch.from_numpy(c.frames))
                    audio_vecs.append(a.pooled)
                    has_audio.append(bool(c.has_audio and a.tokens.shape[0] > 0))
                    wave = c.audio[:keep] if has_audio[-1] else c.audio[:0]
                    waves.append(torch.from_numpy((wave.clip(-1.0, 1.0) * 32767.0).astype("int16")))
                    text_vecs.append(t)
            bar.advance(task, len(items))
    if not ids:
        raise ValueError(f"{root}: none of the {len(clips)} clips in splits {splits} could be decoded")

    tensors = {f"frames/{i}": f for i, f in enumerate(frames)}
    tensors.update({f"wave/{i}": w for i, w in enumerate(waves)})
    tensors.update(
        audio=torch.stack(audio_vecs).float(),
        has_audio=torch.tensor(has_audio, dtype=torch.uint8),
        text=torch.stack(text_vecs).float(),
    )
    index = {"clip_ids": ids, "splits": [split_of[i] for i in ids], "failed": failed}
    publish_tensor_dir(path, tensors, index, _TENSORS, _INDEX)
    return _load(path, key)
