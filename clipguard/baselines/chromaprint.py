"""Chromaprint baseline: the audio fingerprint of AcoustID (``libchromaprint`` through
``pyacoustid``'s ``chromaprint`` module), for copies decided by their soundtrack.

Each clip's audio window is decoded to 16-bit mono PCM (:func:`clipguard.media.reader.read_audio`)
and fingerprinted by libchromaprint (default algorithm: one 32-bit sub-fingerprint per
~0.12 s after a ~2-s start-up, so clips under ~3 s have few items). Two fingerprints are
compared the way AcoustID matches them: slide one over the other, and at each offset
with at least :data:`MIN_OVERLAP` overlapping items take the share of equal bits
(1 - bit error rate); the pair's ``similarity`` is the best offset's. A pair whose clip
has no audio or too short a fingerprint scores 0 with the reason in ``error``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from clipguard.index.faiss_index import progress_bar
from clipguard.media.reader import MediaError, read_audio

__all__ = ["MIN_OVERLAP", "clip_fingerprint", "chromaprint_pair_scores", "fingerprint_similarity"]

log = logging.getLogger(__name__)

MIN_OVERLAP = 4
"""Fewest overlapping sub-fingerprints (~0.5 s) an offset needs to be compared."""
SAMPLE_RATE = 16_000


def clip_fingerprint(path: str | Path, start_s: float, end_s: float) -> np.ndarray:
    """The raw Chromaprint fingerprint (uint32 sub-fingerprints) of ``[start_s, end_s)`` of ``path``.

    Raises:
        MediaError: the file cannot be decoded.
        ValueError: the file has no audio track.
    """
    import chromaprint

    samples, has_audio = read_audio(path, start_s, end_s, SAMPLE_RATE)
    if not has_audio:
        raise ValueError("no audio track")
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")
    fp = chromaprint.Fingerprinter()
    fp.start(SAMPLE_RATE, 1)
    fp.feed(pcm.tobytes())
    raw, _ = chromaprint.decode_fingerprint(fp.finish())
    return np.asarray(raw, dtype=np.uint32)


def fingerprint_similarity(a: np.ndarray, b: np.ndarray, min_overlap: int = MIN_OVERLAP) -> float:
    """Best share of equal bits over every alignment of ``a`` and ``b`` that overlaps by at
    least ``min_overlap`` items (0.0 when none does)."""
    if len(a) < min_overlap or len(b) < min_overlap:
        return 0.0
    best = 0.0
    for offset in range(-(len(b) - min_overlap), len(a) - min_overlap + 1):
        lo_a, lo_b = max(0, offset), max(0, -offset)
        n = min(len(a) - lo_a, len(b) - lo_b)
        errors = np.bitwise_count(a[lo_a : lo_a + n] ^ b[lo_b : lo_b + n]).sum()
        best = max(best, 1.0 - float(errors) / (32.0 * n))
    return best


def chromaprint_pair_scores(root: str | Path, pairs: pd.DataFrame, progress: bool = True) -> pd.DataFrame:
    """``similarity`` (the score), ``query_items`` / ``candidate_items`` (fingerprint lengths)
    and ``error`` per pair of ``pairs`` (same order).

    Raises:
        KeyError: a pair names a clip that is not an accepted clip of ``root``.
    """
    from clipguard.data.schema import resolve_media
    from clipguard.encoders.inputs import read_accepted

    clips = read_accepted(root, "clips").set_index("clip_id")
    needed = sorted(set(pairs["query_clip_id"]) | set(pairs["candidate_clip_id"]))
    unknown = [c for c in needed if c not in clips.index]
    if unknown:
        raise KeyError(f"{len(unknown)} clip(s) of the pairs are not accepted clips of {root}: {unknown[:5]}")
    prints: dict[str, np.ndarray] = {}
    errors: dict[str, str] = {}
    with progress_bar(progress, len(needed), "chromaprint fingerprints") as advance:
        for cid in needed:
            row = clips.loc[cid]
            try:
                prints[cid] = clip_fingerprint(resolve_media(root, row["video_uri"]), float(row["start_s"]), float(row["end_s"]))
                if len(prints[cid]) < MIN_OVERLAP:
                    errors[cid] = f"short_fingerprint: {len(prints[cid])} items (< {MIN_OVERLAP})"
            except (MediaError, ValueError) as e:
                prints[cid] = np.zeros(0, dtype=np.uint32)
                errors[cid] = f"no_audio: {e}" if isinstance(e, ValueError) else f"{e.reason}: {e}"
            advance(1)
    q, c = pairs["query_clip_id"].tolist(), pairs["candidate_clip_id"].tolist()
    return pd.DataFrame(
        {
            "similarity": [fingerprint_similarity(prints[a], prints[b]) for a, b in zip(q, c)],
            "query_items": [len(prints[a]) for a in q],
            "candidate_items": [len(prints[b]) for b in c],
            "error": [
                "; ".join(f"{side} {cid}: {errors[cid]}" for side, cid in (("query", a), ("candidate", b)) if cid in errors)
                for a, b in zip(q, c)
            ],
        },
        index=pairs.index,
    )
