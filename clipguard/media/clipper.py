"""Cutting long videos and recorded streams into fixed clips (20 s by default).

The livestream paper moderates 20-second multimodal clips; short uploads are one clip.
:func:`plan_windows` is pure arithmetic; :func:`iter_clips` decodes one window at a time
(seek + decode), so a one-hour recording never sits in memory at once.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator

from clipguard.config import MediaConfig
from clipguard.media.reader import DecodedClip, MediaError, decode_clip, probe


def plan_windows(
    duration_s: float,
    clip_s: float = 20.0,
    overlap_s: float = 0.0,
    min_s: float = 1.0,
) -> list[tuple[float, float]]:
    """Windows ``[start, end)`` of length ``clip_s`` every ``clip_s - overlap_s`` seconds.

    The last window is cut at ``duration_s``. A trailing remainder shorter than ``min_s``
    is merged into the previous window (so no clip is a sliver); a video shorter than
    ``clip_s`` is a single window. Times are rounded to the millisecond.
    """
    if not math.isfinite(duration_s) or duration_s <= 0:
        raise ValueError(f"duration must be a positive number, got {duration_s}")
    if clip_s <= 0 or overlap_s < 0 or overlap_s >= clip_s:
        raise ValueError(f"need clip_s > overlap_s >= 0, got clip_s={clip_s} overlap_s={overlap_s}")
    step = clip_s - overlap_s
    windows: list[tuple[float, float]] = []
    start = 0.0
    while start < duration_s - 1e-9:
        end = float(min(start + clip_s, duration_s))
        if windows and end - start < min_s:
            if end > windows[-1][1]:
                windows[-1] = (windows[-1][0], round(end, 3))
            break
        windows.append((round(start, 3), round(end, 3)))
        if end >= duration_s:
            break
        start += step
    return windows


def iter_clips(
    path: str | os.PathLike,
    media: MediaConfig | None = None,
    duration_s: float | None = None,
) -> Iterator[DecodedClip]:
    """Decode ``path`` clip by clip (frames at ``media.fps``, 16 kHz mono audio)."""
    media = media or MediaConfig()
    if duration_s is None:
        duration_s = probe(path, timeout_s=media.decode_timeout_s).duration_s
    if duration_s <= 0:
        raise MediaError(path, "duration_out_of_range", f"duration {duration_s}")
    for start, end in plan_windows(duration_s, media.clip_seconds, media.clip_overlap_seconds, media.min_clip_seconds):
        yield decode_clip(
            path,
            start,
            end,
            fps=media.fps,
            sample_rate=media.sample_rate,
            size=media.frame_size,
            timeout_s=media.decode_timeout_s,
        )
