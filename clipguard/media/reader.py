"""Streamed media decoding with PyAV.

Nothing here loads a whole file: frames are decoded one at a time and only the sampled
ones are converted to RGB; audio is decoded only over the requested window. A one-hour
file is therefore read in constant memory, one 20-second clip at a time
(see :mod:`clipguard.media.clipper`).

* :func:`probe` — duration, size, streams, variable-frame-rate check, first-frame decode.
* :func:`iter_frames` — frames sampled at ``fps`` (default 1 fps) over ``[start, end)``.
* :func:`read_audio` — 16 kHz mono float32 over ``[start, end)``; silence + flag when the
  file has no audio track.
* :func:`decode_clip` — both, as a :class:`DecodedClip`.

Every call takes a ``timeout_s`` (``media.decode_timeout_s`` in the callers): a file that
decodes forever or very slowly raises :class:`MediaError` ``decode_timeout`` once the call
has run that long, so one bad file costs a bounded time and never hangs a batch. The limit
is checked between packets and frames (and passed to FFmpeg as the I/O time-out, which
bounds a read that blocks).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

_AV_TIME_BASE = 1_000_000
_PROBE_PACKETS_PER_VIDEO = 20
"""the probe demuxes at most this many packets (of all streams) per video packet it samples"""


class MediaError(Exception):
    """A media file cannot be used. ``reason`` is a code from ``clipguard.data.schema.REASONS``."""

    def __init__(self, path: str | os.PathLike, reason: str, detail: str = "") -> None:
        self.path = str(path)
        self.reason = reason
        self.detail = detail
        super().__init__(f"{self.path}: {reason}" + (f" ({detail})" if detail else ""))


@dataclass(frozen=True)
class MediaInfo:
    path: str
    size_bytes: int
    duration_s: float
    width: int
    height: int
    avg_fps: float | None
    has_audio: bool
    audio_sample_rate: int | None
    variable_frame_rate: bool


@dataclass(frozen=True)
class SampledFrame:
    t: float
    """the sampling time (seconds from the start of the file)"""
    pts_time: float
    """presentation time of the decoded frame that was taken for ``t``"""
    image: np.ndarray = field(repr=False)
    """H x W x 3 uint8 RGB"""


@dataclass(frozen=True)
class DecodedClip:
    path: str
    start_s: float
    end_s: float
    frames: np.ndarray = field(repr=False)
    """T x H x W x 3 uint8"""
    frame_times: np.ndarray = field(repr=False)
    audio: np.ndarray = field(repr=False)
    """float32 mono at ``sample_rate``, exactly ``round((end_s - start_s) * sample_rate)`` samples"""
    sample_rate: int
    has_audio: bool

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


class _Deadline:
    """The time limit of one decode call (``timeout_s`` None: no limit)."""

    def __init__(self, path: str | os.PathLike, timeout_s: float | None) -> None:
        if timeout_s is not None and not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0 or None, got {timeout_s}")
        self.path = path
        self.timeout_s = timeout_s
        self.at = None if timeout_s is None else time.monotonic() + timeout_s

    def left(self) -> float | None:
        """Seconds left for the next call (None: no limit); raises ``decode_timeout`` when none are."""
        if self.at is None:
            return None
        self.check("decode")
        return self.at - time.monotonic()

    def check(self, what: str) -> None:
        """Raise ``decode_timeout`` once the limit has passed (``what``: where it stopped)."""
        if self.at is not None and time.monotonic() > self.at:
            raise MediaError(self.path, "decode_timeout", f"{what}: still decoding after the {self.timeout_s:g} s limit")


def _open(path: str | os.PathLike, deadline: _Deadline | None = None):
    import av

    p = Path(path)
    if not p.exists():
        raise MediaError(path, "missing_file")
    if p.is_file() and p.stat().st_size == 0:
        raise MediaError(path, "empty_file")
    try:
        return av.open(str(p), mode="r", timeout=deadline.left() if deadline is not None else None)
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise MediaError(path, "decode_error", str(e)) from e


def _duration(container, stream) -> float:
    if container.duration:
        return container.duration / _AV_TIME_BASE
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return 0.0


def probe(
    path: str | os.PathLike,
    vfr_packets: int = 240,
    vfr_tolerance: float = 0.1,
    timeout_s: float | None = None,
    *,
    _deadline: _Deadline | None = None,
) -> MediaInfo:
    """Open a media file, check that its first video frame decodes, and describe it.

    Variable frame rate is detected from the first ``vfr_packets`` video packet timestamps
    (demux only, at most ``20 * vfr_packets`` packets of all streams): relative spread of the
    inter-frame gaps above ``vfr_tolerance``.
    Raises :class:`MediaError` with a reason code for unusable files (``decode_timeout``
    past ``timeout_s``).
    """
    import av

    size = Path(path).stat().st_size if Path(path).is_file() else 0
    deadline = _deadline or _Deadline(path, timeout_s)
    with _open(path, deadline) as c:
        if not c.streams.video:
            raise MediaError(path, "no_video_stream")
        vs = c.streams.video[0]
        duration = _duration(c, vs)
        pts: list[float] = []
        first = None
        try:
            # one pass, no seek: every stream is demuxed (the container interleaves them), the first
            # video frame decoded on the way; at most _PROBE_PACKETS_PER_VIDEO packets per video
            # packet sampled once that frame is out, so a file of tiny packets costs a bounded probe
            for n, pkt in enumerate(c.demux(), 1):
                deadline.check("probe")
                if pkt.stream is vs:
                    if pkt.pts is not None and pkt.time_base is not None:
                        pts.append(float(pkt.pts * pkt.time_base))
                    if first is None:
                        first = next(iter(pkt.decode()), None)
                if first is not None and (len(pts) >= vfr_packets or n >= _PROBE_PACKETS_PER_VIDEO * vfr_packets):
                    break
            if first is None:  # a decoder may hold its first frame until it is flushed
                first = next(iter(vs.codec_context.decode(None)), None)
        except (av.error.FFmpegError, ValueError) as e:
            raise MediaError(path, "decode_error", str(e)) from e
        if first is None:
            raise MediaError(path, "decode_error", "no decodable video frame")
        vfr = False
        if len(pts) >= 3:
            gaps = np.diff(np.sort(np.asarray(pts)))
            gaps = gaps[gaps > 0]
            if len(gaps) >= 2:
                med = float(np.median(gaps))
                vfr = bool((gaps.max() - gaps.min()) / med > vfr_tolerance)
        avg = float(vs.average_rate) if vs.average_rate else None
        if len(pts) >= 2:
            # some muxers under-report the duration of variable-rate streams
            gap = float(np.median(np.diff(np.sort(np.asarray(pts)))))
            duration = max(duration, max(pts) + gap)
        has_audio = bool(c.streams.audio)
        return MediaInfo(
            path=str(path),
            size_bytes=size,
            duration_s=float(duration),
            width=int(vs.codec_context.width or first.width),
            height=int(vs.codec_context.height or first.height),
            avg_fps=avg,
            has_audio=has_audio,
            audio_sample_rate=int(c.streams.audio[0].sample_rate) if has_audio else None,
            variable_frame_rate=vfr,
        )


def iter_frames(
    path: str | os.PathLike,
    fps: float = 1.0,
    start: float = 0.0,
    end: float | None = None,
    size: int | tuple[int, int] | None = None,
    timeout_s: float | None = None,
    *,
    _deadline: _Deadline | None = None,
) -> Iterator[SampledFrame]:
    """Yield frames sampled at ``fps`` over ``[start, end)``, streamed.

    The frame for sampling time ``t`` is the last decoded frame whose presentation time is
    ``<= t`` (the first frame if none is), which is correct for constant and variable frame
    rates alike. Only sampled frames are converted to RGB (resized to ``size`` when given:
    an int for a square, or ``(width, height)``). ``timeout_s`` bounds the whole iteration.
    """
    import av

    if fps <= 0:
        raise ValueError("fps must be > 0")
    if isinstance(size, int):
        size = (size, size)
    deadline = _deadline or _Deadline(path, timeout_s)
    with _open(path, deadline) as c:
        if not c.streams.video:
            raise MediaError(path, "no_video_stream")
        vs = c.streams.video[0]
        vs.thread_type = "AUTO"
        stop = math.inf if end is None else end
        if stop <= start:
            return
        if start > 0:
            c.seek(int(start * _AV_TIME_BASE), backward=True, any_frame=False)
        k = 0
        start = float(start)
        target = start
        prev = None

        def emit(fr, t):
            kw = {"format": "rgb24"}
            if size is not None:
                kw.update(width=size[0], height=size[1])
            return SampledFrame(t=t, pts_time=float(fr.time or 0.0), image=fr.to_ndarray(**kw))

        try:
            for fr in c.decode(vs):
                deadline.check(f"video at t={target:.2f}s")
                if fr.time is None:
                    continue
                while fr.time > target + 1e-6:
                    yield emit(prev if prev is not None else fr, target)
                    k += 1
                    target = start + k / fps
                    if target >= stop - 1e-9:
                        return
                prev = fr
        except av.error.FFmpegError as e:
            raise MediaError(path, "decode_error", f"at t={target:.2f}s: {e}") from e
        # past the last frame: it stands for the remaining sampling times of the window
        # (to the end of the window, or up to the last frame's time when no end was given)
        last = float(prev.time) if prev is not None else -math.inf
        while prev is not None and target < stop - 1e-9 and (math.isfinite(stop) or target <= last + 1e-6):
            yield emit(prev, target)
            k += 1
            target = start + k / fps


def read_audio(
    path: str | os.PathLike,
    start: float = 0.0,
    end: float | None = None,
    sample_rate: int = 16_000,
    timeout_s: float | None = None,
    *,
    _deadline: _Deadline | None = None,
) -> tuple[np.ndarray, bool]:
    """Decode ``[start, end)`` of the first audio track as mono float32 at ``sample_rate``.

    Returns ``(samples, has_audio)``; exactly ``round((end - start) * sample_rate)`` samples
    (zero-padded at the end if the track is shorter). A file without an audio track gives
    silence and ``has_audio=False``. ``timeout_s`` bounds the call.
    """
    import av

    deadline = _deadline or _Deadline(path, timeout_s)
    with _open(path, deadline) as c:
        if end is None:
            end = _duration(c, c.streams.video[0] if c.streams.video else c.streams.audio[0])
        n_out = max(0, int(round((end - start) * sample_rate)))
        if not c.streams.audio:
            return np.zeros(n_out, dtype=np.float32), False
        a = c.streams.audio[0]
        if start > 0:
            c.seek(int(start * _AV_TIME_BASE), backward=True, any_frame=False)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        chunks: list[np.ndarray] = []
        t0: float | None = None
        try:
            for fr in c.decode(a):
                deadline.check("audio")
                if fr.time is not None:
                    if fr.time >= end:
                        break
                    if fr.time + fr.samples / fr.sample_rate < start:
                        continue
                    if t0 is None:
                        t0 = float(fr.time)
                for out in resampler.resample(fr):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
        except av.error.FFmpegError as e:
            raise MediaError(path, "decode_error", f"audio: {e}") from e
        audio = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
        skip = max(0, int(round(((start - t0) if t0 is not None else 0.0) * sample_rate)))
        lead = max(0, int(round(((t0 - start) if t0 is not None else 0.0) * sample_rate)))
        audio = np.concatenate([np.zeros(lead, np.float32), audio[skip:]])[:n_out]
        if len(audio) < n_out:
            audio = np.pad(audio, (0, n_out - len(audio)))
        return audio, True


def decode_clip(
    path: str | os.PathLike,
    start: float = 0.0,
    end: float | None = None,
    fps: float = 1.0,
    sample_rate: int = 16_000,
    size: int | tuple[int, int] | None = None,
    timeout_s: float | None = None,
) -> DecodedClip:
    """Frames sampled at ``fps`` and mono audio of the window ``[start, end)``; ``timeout_s``
    bounds the whole call (probe, frames and audio together)."""
    deadline = _Deadline(path, timeout_s)
    if end is None:
        end = probe(path, _deadline=deadline).duration_s
    if not (math.isfinite(start) and math.isfinite(end)) or end <= start:
        raise MediaError(path, "bad_window", f"start={start} end={end}")
    frames = list(iter_frames(path, fps=fps, start=start, end=end, size=size, _deadline=deadline))
    if not frames:
        raise MediaError(path, "decode_error", f"no frame in window [{start:.2f}, {end:.2f})")
    audio, has_audio = read_audio(path, start=start, end=end, sample_rate=sample_rate, _deadline=deadline)
    return DecodedClip(
        path=str(path),
        start_s=float(start),
        end_s=float(end),
        frames=np.stack([f.image for f in frames]),
        frame_times=np.asarray([f.t for f in frames], dtype=np.float64),
        audio=audio,
        sample_rate=sample_rate,
        has_audio=has_audio,
    )
