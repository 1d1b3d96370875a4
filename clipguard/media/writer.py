"""MP4 writing with PyAV (libx264 video, AAC audio). Used by the corpus generator and tests."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np


def write_video(
    path: str | os.PathLike,
    frames: Iterable[np.ndarray],
    fps: float,
    audio: np.ndarray | None = None,
    sample_rate: int = 16_000,
    crf: int = 23,
    timestamps: Sequence[float] | None = None,
    audio_bitrate: int = 48_000,
    deterministic: bool = False,
) -> Path:
    """Encode RGB frames (H x W x 3 uint8, even H and W) and optional mono float audio.

    ``timestamps`` (seconds, increasing, one per frame) gives a variable frame rate;
    otherwise frames are spaced ``1/fps``. Writes to a temporary name and renames, so a
    crash never leaves a half-written file under ``path``. ``deterministic`` runs x264 on
    one thread without macroblock-tree rate control (``threads=1:lookahead-threads=1:
    no-mbtree=1``): identical input then gives a byte-identical file, which the default
    settings do not guarantee (measured: repeated encodes of the same frames differ).
    """
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    fps_frac = Fraction(fps).limit_denominator(1000)
    with av.open(str(tmp), mode="w", format="mp4") as out:
        vs = None
        ms_base = Fraction(1, 1000)
        if audio is not None:
            ast = out.add_stream("aac", rate=sample_rate, layout="mono")
            ast.bit_rate = audio_bitrate
        for i, img in enumerate(frames):
            img = np.ascontiguousarray(img, dtype=np.uint8)
            if vs is None:
                h, w = img.shape[:2]
                if h % 2 or w % 2:
                    raise ValueError(f"frame size must be even, got {w}x{h}")
                vs = out.add_stream("libx264", rate=fps_frac)
                vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
                options: dict[str, object] = {"crf": str(crf), "preset": "veryfast"}
                if deterministic:
                    options["x264-params"] = "threads=1:lookahead-threads=1:no-mbtree=1"
                vs.options = options
                if timestamps is not None:
                    vs.codec_context.time_base = ms_base
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            if timestamps is not None:
                vf.pts = int(round(timestamps[i] * 1000))
                vf.time_base = ms_base
            else:
                vf.pts = i
                vf.time_base = 1 / fps_frac
            for pkt in vs.encode(vf):
                out.mux(pkt)
        if vs is None:
            raise ValueError("write_video: no frames")
        for pkt in vs.encode(None):
            out.mux(pkt)
        if audio is not None:
            a = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)
            n = 1024
            for j, s in enumerate(range(0, len(a), n)):
                chunk = a[s : s + n]
                af = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="fltp", layout="mono")
                af.sample_rate = sample_rate
                af.pts = s
                af.time_base = Fraction(1, sample_rate)
                for pkt in ast.encode(af):
                    out.mux(pkt)
            for pkt in ast.encode(None):
                out.mux(pkt)
    os.replace(tmp, path)
    return path
