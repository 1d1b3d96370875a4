"""Features for media outside the feature store (queries, ad-hoc pairs), and student inputs.

:func:`encode_media` decodes and encodes arbitrary video files exactly like feature
extraction does (:func:`clipguard.encoders.inputs.decode_batches` at ``cfg.media``'s
settings, then :func:`clipguard.features.extract._encode` with the frozen encoders, tokens
rounded to float16 as they are stored), so a query is comparable with the clips of the
store. A file that cannot be decoded comes back as its
:class:`~clipguard.media.reader.MediaError` instead of stopping the batch.

The window of a file is ``[start_s, end_s)`` when given, else its first
``cfg.media.clip_seconds`` (the clip length the encoders and the student work on).

:func:`clip_features` turns per-clip token matrices (fresh or read from the store) into
the student's padded :class:`~clipguard.models.matchlite.ClipFeatures`, keeping at most
``max_*_tokens`` uniformly spaced tokens per modality as training does.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from clipguard.config import Config
from clipguard.data.validate import check_media
from clipguard.encoders.bundle import EncoderBundle
from clipguard.encoders.inputs import decode_batches
from clipguard.features.extract import _encode, _settings
from clipguard.features.store_format import MODALITIES, TokenStore, array_key
from clipguard.index.faiss_index import progress_bar
from clipguard.media.reader import MediaError
from clipguard.models.matchlite import ClipFeatures, MatchLiteConfig

__all__ = [
    "EncodedClip",
    "MediaRequest",
    "clip_features",
    "encode_media",
    "extraction_settings",
    "student_modalities",
    "tokens_from_store",
]

log = logging.getLogger(__name__)

_MODALITY_OF_VIEW = {"v": "visual", "va": "visual", "vt": "visual", "a": "audio", "av": "audio", "t": "text", "tv": "text"}


@dataclass(frozen=True)
class MediaRequest:
    """One file window to encode, with the text that goes with it."""

    key: str
    """caller's id of the request (unique within a call)"""
    path: Path
    start_s: float | None = None
    end_s: float | None = None
    title: str = ""
    ocr: str = ""
    asr: str = ""


@dataclass(frozen=True)
class EncodedClip:
    """The features of one encoded window: token matrices per modality and the clip embedding."""

    tokens: dict[str, torch.Tensor]
    """modality -> (T, D) float32 (values rounded to float16, as stored)"""
    embedding: np.ndarray
    """(E,) the clip embedding the index is searched with"""


def extraction_settings(cfg: Config, encoder_version: str) -> dict[str, Any]:
    """The settings that change extracted values (what ``features.json`` records as ``settings``)."""
    return _settings(cfg, {"version": encoder_version})


def _window(request: MediaRequest, cfg: Config) -> tuple[float, float]:
    """``[start, end)`` of a request: as given, else the first ``media.clip_seconds`` of the file.
    The file is checked as validation checks media (size, probe, duration bounds) first."""
    info = check_media(Path(request.path), str(request.path), cfg.validation, cfg.media.decode_timeout_s)
    start = float(request.start_s or 0.0)
    if request.end_s is not None:
        end = float(request.end_s)
    else:
        end = min(info.duration_s, start + cfg.media.clip_seconds)
    if not (np.isfinite(start) and np.isfinite(end)) or start < 0 or end <= start:
        raise MediaError(request.path, "bad_window", f"start={start} end={end}")
    return start, end


def encode_media(
    requests: Sequence[MediaRequest], bundle: EncoderBundle, cfg: Config, progress: bool = True
) -> dict[str, EncodedClip | MediaError]:
    """Decode and encode each request's window; ``{key: EncodedClip or MediaError}``.

    Raises:
        ValueError: duplicate keys, or an encoder bundle whose audio sample rate differs
            from ``cfg.media.sample_rate``.
    """
    keys = [r.key for r in requests]
    if len(set(keys)) != len(keys):
        raise ValueError("encode_media: request keys must be unique")
    if bundle.audio.sample_rate != cfg.media.sample_rate:
        raise ValueError(
            f"the encoders take audio at {bundle.audio.sample_rate} Hz but media.sample_rate={cfg.media.sample_rate}"
        )
    out: dict[str, EncodedClip | MediaError] = {}
    rows = []
    for r in requests:
        try:
            start, end = _window(r, cfg)
        except MediaError as e:
            out[r.key] = e
            continue
        except Exception as e:  # noqa: BLE001 - a file the prober chokes on is one bad item
            out[r.key] = MediaError(r.path, "decode_error", f"{type(e).__name__}: {e}")
            continue
        rows.append(
            {
                "clip_id": r.key,
                "video_uri": str(r.path),
                "start_s": start,
                "end_s": end,
                "title": r.title,
                "ocr": r.ocr,
                "asr": r.asr,
            }
        )
    todo = pd.DataFrame(rows, columns=["clip_id", "video_uri", "start_s", "end_s", "title", "ocr", "asr"])
    with progress_bar(progress and len(todo) > 0, len(todo), "encode videos") as advance:
        # every path is absolute and already checked by the caller: decode relative to "/"
        for items in decode_batches(Path("/"), todo, cfg.media, cfg.features.batch_size, cfg.features.prefetch):
            for it in items:
                if it.error is not None:
                    out[it.clip_id] = it.error
            ok = [it for it in items if it.clip is not None]
            if ok:
                with torch.inference_mode():
                    encoded = _encode(bundle, ok)
                for row, arrays in encoded:
                    key = row["clip_id"]
                    out[key] = EncodedClip(
                        {m: arrays[array_key(key, m)].float() for m in MODALITIES},
                        np.asarray(row["clip_embedding"], dtype=np.float32),
                    )
            advance(len(items))
    return out


def student_modalities(config: MatchLiteConfig) -> tuple[str, ...]:
    """The feature modalities a student reads (visual always; audio/text with their views)."""
    used = {_MODALITY_OF_VIEW[v] for v in config.views}
    return tuple(m for m in ("visual", "audio", "text") if m in used)


def tokens_from_store(
    features_dir: str | Path, clip_ids: Sequence[str], modalities: Sequence[str]
) -> list[dict[str, torch.Tensor]]:
    """Per clip, the stored token matrices (real tokens only) of ``modalities``.

    Raises:
        KeyError: a clip has no features in ``features_dir``.
    """
    if not clip_ids:
        return []
    batch = TokenStore(features_dir).load(clip_ids, tuple(modalities))
    return [{m: batch.tokens[m][i, batch.masks[m][i]] for m in modalities} for i in range(len(clip_ids))]


def clip_features(clips: Sequence[Mapping[str, torch.Tensor]], config: MatchLiteConfig) -> ClipFeatures:
    """Pad per-clip token matrices into :class:`ClipFeatures` for a student with ``config``.

    Each modality keeps the tokens :meth:`MatchLiteConfig.token_indices` picks (at most
    ``config.max_<modality>_tokens``; time axes resampled to exactly that many when the
    student was trained so), as the training data does.

    Raises:
        ValueError: a token dimension differs from the student's (features of another encoder).
    """
    dims = {"visual": config.visual_dim, "audio": config.audio_dim, "text": config.text_dim}
    padded: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for m in student_modalities(config):
        limit = config.max_tokens(m)
        x = torch.zeros(len(clips), limit, dims[m])
        mask = torch.zeros(len(clips), limit, dtype=torch.bool)
        for i, clip in enumerate(clips):
            t = clip[m]
            if t.ndim != 2 or t.shape[1] != dims[m]:
                raise ValueError(
                    f"{m} tokens have shape {tuple(t.shape)} but the student expects (T, {dims[m]}): "
                    "the features come from an encoder the student was not trained on"
                )
            keep = list(config.token_indices(m, len(t)))
            x[i, : len(keep)] = t[keep].float()
            mask[i, : len(keep)] = True
        padded[m] = (x, mask)
    visual, visual_mask = padded["visual"]
    audio, audio_mask = padded.get("audio", (None, None))
    text, text_mask = padded.get("text", (None, None))
    return ClipFeatures(visual, visual_mask, audio, audio_mask, text, text_mask)
