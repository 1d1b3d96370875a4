"""Encoder inputs from a validated data root: accepted clips and their decoded media.

Pretraining and feature extraction both read ``<root>/validated/clips.parquet`` and decode
each clip window with :func:`clipguard.media.reader.decode_clip` at ``cfg.media``'s frame
rate, sample rate and frame size. :func:`decode_batches` does so in batches, decoding the
next batches in a background thread while the caller encodes the current one (PyAV
releases the GIL while decoding). A clip that fails to decode comes back with its
:class:`~clipguard.media.reader.MediaError` instead of stopping the batch.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from clipguard.config import MediaConfig
from clipguard.data.schema import VALIDATED_DIR, resolve_media
from clipguard.encoders.text import clip_text
from clipguard.media.reader import DecodedClip, MediaError, decode_clip

ACCEPTED_CLIPS = f"{VALIDATED_DIR}/clips.parquet"
ACCEPTED_PAIRS = f"{VALIDATED_DIR}/pairs.parquet"


def read_accepted(root: str | Path, which: Literal["clips", "pairs"] = "clips") -> pd.DataFrame:
    """The validated (accepted) clip or pair manifest of a data root."""
    path = Path(root) / (ACCEPTED_CLIPS if which == "clips" else ACCEPTED_PAIRS)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `clipguard data validate {root}` first")
    return pd.read_parquet(path)


@dataclass(frozen=True)
class ClipInput:
    """One decoded clip (or why it could not be decoded)."""

    clip_id: str
    text: str
    clip: DecodedClip | None
    error: MediaError | None
    decode_seconds: float


def _decode_one(root: Path, row: dict, media: MediaConfig) -> ClipInput:
    t0 = time.perf_counter()
    text = clip_text(row.get("title"), row.get("ocr"), row.get("asr"))
    try:
        path = resolve_media(root, row["video_uri"])
        clip = decode_clip(
            path,
            start=float(row["start_s"]),
            end=float(row["end_s"]),
            fps=media.fps,
            sample_rate=media.sample_rate,
            size=media.frame_size,
            timeout_s=media.decode_timeout_s,
        )
        return ClipInput(row["clip_id"], text, clip, None, time.perf_counter() - t0)
    except MediaError as e:
        err = e
    except Exception as e:  # noqa: BLE001 - one undecodable file must not stop the batch
        err = MediaError(row["video_uri"], "decode_error", f"{type(e).__name__}: {e}")
    return ClipInput(row["clip_id"], text, None, err, time.perf_counter() - t0)


def decode_batches(
    root: str | Path, clips: pd.DataFrame, media: MediaConfig, batch_size: int, prefetch: int = 1
) -> Iterator[list[ClipInput]]:
    """Decode ``clips`` (manifest rows) in batches of ``batch_size``, ``prefetch`` batches ahead."""
    root = Path(root).resolve()
    rows = clips.to_dict("records")
    batches = [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]

    def work(batch: list[dict]) -> list[ClipInput]:
        return [_decode_one(root, r, media) for r in batch]

    if prefetch <= 0:
        for b in batches:
            yield work(b)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="decode") as pool:
        pending: deque[Future[list[ClipInput]]] = deque()
        it = iter(batches)
        for b in it:
            pending.append(pool.submit(work, b))
            if len(pending) > prefetch:
                break
        while pending:
            done = pending.popleft().result()
            nxt = next(it, None)
            if nxt is not None:
                pending.append(pool.submit(work, nxt))
            yield done
