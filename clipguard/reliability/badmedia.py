"""A suite of bad and odd media files, generated locally with FFmpeg (no downloads).

Each :class:`MediaCase` is one class of input a moderation system meets in the wild: files
that are empty, truncated, not media at all, or media of an unusual kind (audio only, one
frame, an hour long, VP9/Opus, Matroska, HEVC, variable frame rate, 4K, corrupted in the
middle, or so finely packetised that decoding is slower than real time). The campaign
(:mod:`clipguard.reliability.campaign`) pushes every file through every stage and checks
that each gets its **defined outcome** (``expect``): accepted, accepted with a flag, or
quarantined with a reason code from :data:`clipguard.data.schema.REASONS` — never a crash,
never a hang.

``quick=True`` shrinks the hour to two minutes so the test suite runs the whole suite in
under a minute; the report runs it at full size.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FFMPEG = "ffmpeg"
_FF = (FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-y")
_VIDEO = ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")


PROBE_STAGES = ("ingest", "validate")
"""stages that probe a file and check it against the contract"""
DECODE_STAGES = ("extract", "rci_score", "service")
"""stages that decode clip windows"""


@dataclass(frozen=True)
class MediaCase:
    """One class of input: how to make it and what each stage must do with it.

    Outcomes are ``accepted``, ``flagged:<flag>[:<flag>]`` (accepted with flags: only
    validation flags) or ``quarantined:<reason>``. ``expect`` is the outcome of the stages
    that probe a file (:data:`PROBE_STAGES`), ``expect_decode`` that of the stages that decode
    its clip windows (:data:`DECODE_STAGES`) when it differs, and ``expect_at`` names a
    stage whose outcome differs from both.
    """

    name: str
    description: str
    filename: str
    expect: str
    build: Callable[[Path, bool], None] = field(repr=False)
    expect_decode: str | None = None
    expect_at: Mapping[str, str] = field(default_factory=dict)

    def expected(self, stage: str) -> str:
        """The defined outcome of this case at ``stage``."""
        if stage in self.expect_at:
            return self.expect_at[stage]
        out = self.expect if stage in PROBE_STAGES else (self.expect_decode or self.expect)
        if stage != "validate" and out.startswith("flagged:"):
            return "accepted"
        return out


def _run(*args: str) -> None:
    try:
        subprocess.run([*_FF, *args], check=True, capture_output=True, timeout=600)
    except FileNotFoundError as e:
        raise RuntimeError("the bad-media suite needs the ffmpeg command (Debian package ffmpeg; make setup installs it)") from e
    except subprocess.CalledProcessError as e:
        raise RuntimeError(f"ffmpeg {' '.join(args)} failed: {e.stderr.decode(errors='replace')[-500:]}") from e


def _testsrc(size: str = "160x90", rate: int = 10, seconds: float = 4.0) -> tuple[str, ...]:
    return ("-f", "lavfi", "-i", f"testsrc2=s={size}:r={rate}:d={seconds}")


def _tone(seconds: float = 4.0, rate: int = 16_000, extra: str = "") -> tuple[str, ...]:
    return ("-f", "lavfi", "-i", f"sine=f=440:r={rate}:d={seconds}{extra}")


def good_video(path: Path, seconds: float = 4.0) -> None:
    """A plain H.264 + AAC MP4 with a test pattern and a tone (the control case)."""
    _run(*_testsrc(seconds=seconds), *_tone(seconds), *_VIDEO, "-c:a", "aac", "-shortest", str(path))


def _zero_byte(p: Path, quick: bool) -> None:
    p.write_bytes(b"")


def _truncated(p: Path, quick: bool) -> None:
    full = p.with_suffix(".full.mp4")
    good_video(full, 6.0)  # the moov atom is written last: cutting the tail removes it
    data = full.read_bytes()
    full.unlink()
    p.write_bytes(data[: len(data) * 2 // 3])


def _random_bytes(p: Path, quick: bool) -> None:
    p.write_bytes(np.random.default_rng(0).bytes(200_000))


def _text(p: Path, quick: bool) -> None:
    p.write_text("this is not a video\n" * 200)


def _png(p: Path, quick: bool) -> None:
    from PIL import Image

    Image.fromarray(np.random.default_rng(1).integers(0, 256, (90, 160, 3), dtype=np.uint8)).save(p, format="PNG")


def _audio_only(p: Path, quick: bool) -> None:
    _run(*_tone(4.0), "-c:a", "aac", str(p))


def _no_audio(p: Path, quick: bool) -> None:
    _run(*_testsrc(), *_VIDEO, str(p))


def _single_frame(p: Path, quick: bool) -> None:
    _run(*_testsrc(), *_VIDEO, "-frames:v", "1", str(p))


def _one_hour(p: Path, quick: bool) -> None:
    seconds = 120 if quick else 3600
    _run(*_testsrc(rate=2, seconds=seconds), *_tone(seconds), *_VIDEO, "-g", "20", "-c:a", "aac", "-b:a", "24k", str(p))


def _webm(p: Path, quick: bool) -> None:
    _run(
        *_testsrc(),
        *_tone(rate=48_000),
        "-c:v",
        "libvpx-vp9",
        "-deadline",
        "realtime",
        "-cpu-used",
        "8",
        "-c:a",
        "libopus",
        str(p),
    )


def _matroska(p: Path, quick: bool) -> None:
    _run(*_testsrc(), *_tone(), "-c:v", "mpeg4", "-q:v", "5", "-c:a", "aac", str(p))


def _hevc(p: Path, quick: bool) -> None:
    _run(*_testsrc(size="320x180"), *_tone(), "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error",
         "-tag:v", "hvc1", "-c:a", "aac", str(p))  # fmt: skip


def _vfr(p: Path, quick: bool) -> None:
    # frame gaps of 0.1 s, and 0.4 s before every fifth frame: timestamps kept as written
    _run(*_testsrc(rate=10, seconds=6.0), "-vf", "setpts='(N/10+0.3*floor(N/5))/TB'", "-fps_mode", "passthrough", *_VIDEO, str(p))


def _uhd(p: Path, quick: bool) -> None:
    _run(*_testsrc(size="3840x2160", rate=5, seconds=2.0), *_tone(2.0), *_VIDEO, "-c:a", "aac", str(p))


def _scrambled(p: Path, quick: bool) -> None:
    good_video(p, 6.0)
    data = bytearray(p.read_bytes())
    n = len(data)
    lo, hi = n * 2 // 5, n * 3 // 5
    data[lo:hi] = np.random.default_rng(2).bytes(hi - lo)
    p.write_bytes(bytes(data))


def _slow(p: Path, quick: bool) -> None:
    # one audio sample per packet: ~1 million packets for 20 s at 48 kHz. Opening it reads at most
    # FFmpeg's probe size (5 MB), but decoding a 20-s window is slower than real time here
    _run(*_testsrc(rate=5, seconds=20.0), *_tone(20.0, 48_000, ",asetnsamples=n=1"), *_VIDEO, "-c:a", "pcm_s16le", str(p))


def _outside(p: Path, quick: bool) -> None:
    # the suite's folder is <data root>/<folder>: the link points beside the data root
    target = p.parent.parent.parent / "outside-the-root.mp4"
    if not target.exists():
        good_video(target)
    p.symlink_to(target)


_EXTRACT_DECODES = {"extract": "accepted"}
"""extraction decodes the window it is given (the duration bounds are validation's): a still
image or a single frame is a clip of one frame to it"""
_UPLOAD_IS_BYTES = {"service": "accepted"}
"""an upload is the bytes the client sends: a link out of the root is a good video to the service"""

# fmt: off
CASES: tuple[MediaCase, ...] = (
    MediaCase("zero_byte", "an empty file", "zero_byte.mp4", "quarantined:empty_file", _zero_byte),
    MediaCase("truncated_mp4", "an MP4 cut before its moov atom", "truncated.mp4", "quarantined:decode_error", _truncated),
    MediaCase("random_bytes", "200 kB of random bytes named .mp4", "random.mp4", "quarantined:decode_error", _random_bytes),
    MediaCase("text_as_mp4", "a text file named .mp4", "text.mp4", "quarantined:decode_error", _text),
    MediaCase("png_as_mp4", "a PNG image named .mp4", "png.mp4", "quarantined:duration_out_of_range", _png,
              expect_at=_EXTRACT_DECODES),
    MediaCase("audio_only", "AAC audio in MP4, no video stream", "audio_only.mp4", "quarantined:no_video_stream", _audio_only),
    MediaCase("video_without_audio", "H.264 video, no audio track", "no_audio.mp4", "flagged:no_audio", _no_audio),
    MediaCase("single_frame", "a video of one frame", "single_frame.mp4", "quarantined:duration_out_of_range", _single_frame,
              expect_at=_EXTRACT_DECODES),
    MediaCase("one_hour", "a one-hour H.264 + AAC file (decoded clip by clip)", "one_hour.mp4", "accepted", _one_hour),
    MediaCase("webm_vp9_opus", "VP9 video + Opus audio in WebM", "vp9_opus.webm", "accepted", _webm),
    MediaCase("matroska", "MPEG-4 part 2 video + AAC in Matroska", "matroska.mkv", "accepted", _matroska),
    MediaCase("hevc", "HEVC (H.265) video + AAC in MP4", "hevc.mp4", "accepted", _hevc),
    MediaCase("variable_frame_rate", "H.264 with irregular frame timestamps, no audio", "vfr.mp4",
              "flagged:no_audio:variable_frame_rate", _vfr),
    MediaCase("uhd_4k", "3840x2160 H.264 + AAC", "uhd_4k.mp4", "accepted", _uhd),
    MediaCase("scrambled_middle", "an MP4 with its middle fifth overwritten by random bytes", "scrambled.mp4", "accepted",
              _scrambled, expect_decode="quarantined:decode_error"),
    MediaCase("slow_decode", "one audio sample per packet: decodes slower than real time", "slow_decode.mkv", "accepted",
              _slow, expect_decode="quarantined:decode_timeout"),
    MediaCase("symlink_outside_root", "a symbolic link to a video outside the data root", "outside_link.mp4",
              "quarantined:path_outside_root", _outside, expect_at=_UPLOAD_IS_BYTES),
)
# fmt: on
"""The suite, in report order."""


def build_suite(folder: str | os.PathLike, quick: bool = False, cases: tuple[MediaCase, ...] = CASES) -> dict[str, Path]:
    """Write every case's file into ``folder`` (replacing what is there); ``{case name: path}``."""
    if shutil.which(FFMPEG) is None:
        raise RuntimeError("the bad-media suite needs the ffmpeg command (Debian package ffmpeg; make setup installs it)")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    for case in cases:
        path = folder / case.filename
        if path.is_symlink() or path.exists():
            path.unlink()
        case.build(path, quick)
        out[case.name] = path
    return out
