"""Edit operations that turn a rendered video into a reproduced copy.

Each operation maps ``(frames, audio)`` to new ``(frames, audio)`` (frames T x H x W x 3
uint8 at a fixed size, audio mono float32 or ``None``) and is fully described by its
parameters, which :func:`sample_params` draws from a numpy ``Generator`` so that a copy is
reproducible. Operations never change the frame size, and keep audio and video the same
length.

Families (what each split of the RCI pairs may contain):

* :data:`TRAIN_EDITS` — the edits of train/val pairs (and of test/traffic pairs too);
* :data:`HELDOUT_EDITS` — used only in test-split pairs (generalisation to unseen edits);
* :data:`TREND_EDITS` — a new editing style that appears only from the trend day;
* :data:`AUDIO_EDITS` — operations on the soundtrack alone.

On-screen text stays inside the central region ``[0.12, 0.88]`` of the frame and the
geometric edits are bounded so that it stays visible (``crop`` keeps ``[0.1, 0.9]``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from clipguard.synth.draw import composite, text_box_size, text_patch, wrap_text
from clipguard.synth.sound import render_sound
from clipguard.synth.sources import procedural_canvas
from clipguard.synth.specs import Edit, Sound

TRAIN_EDITS: tuple[str, ...] = (
    "crop",
    "hflip",
    "speed",
    "trim",
    "reencode_lowq",
    "overlay_text",
    "border",
    "color_jitter",
    "brightness",
    "blur",
)
HELDOUT_EDITS: tuple[str, ...] = ("picture_in_picture", "pad_blur", "emoji_overlay", "rotate")
TREND_EDITS: tuple[str, ...] = ("split_screen",)
AUDIO_EDITS: tuple[str, ...] = ("audio_shift", "volume", "replace_audio")

DEFAULT_CRF = 23
TEXT_REGION = (0.12, 0.88)
"""horizontal/vertical fraction of the frame that on-screen text must stay inside"""


def _pil_map(frames: np.ndarray, fn) -> np.ndarray:
    return np.stack([np.asarray(fn(Image.fromarray(f))) for f in frames])


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(x + 0.5, 0, 255).astype(np.uint8)


def _resample_audio(audio: np.ndarray, n: int) -> np.ndarray:
    if len(audio) == n:
        return audio
    x = np.linspace(0.0, len(audio) - 1, n)
    return np.interp(x, np.arange(len(audio)), audio).astype(np.float32)


def _audio_len(n_frames: int, fps: float, sr: int) -> int:
    return int(round(n_frames / fps * sr))


def _fit(audio: np.ndarray, n: int) -> np.ndarray:
    """Cut or zero-pad ``audio`` to ``n`` samples."""
    return audio[:n] if len(audio) >= n else np.pad(audio, (0, n - len(audio)))


# -- visual edits --------------------------------------------------------------------------


def _crop(frames, audio, fps, sr, p):
    T, H, W, _ = frames.shape
    cw, ch = p["frac"] * W, p["frac"] * H
    x0, y0 = p["ox"] * (W - cw), p["oy"] * (H - ch)
    box = (x0, y0, x0 + cw, y0 + ch)
    return _pil_map(frames, lambda im: im.resize((W, H), Image.Resampling.BILINEAR, box=box)), audio


def _hflip(frames, audio, fps, sr, p):
    return np.ascontiguousarray(frames[:, :, ::-1]), audio


def _speed(frames, audio, fps, sr, p):
    T = frames.shape[0]
    n = max(2, int(round(T / p["factor"])))
    idx = np.minimum(T - 1, np.floor(np.arange(n) * p["factor"]).astype(int))
    if audio is not None:
        audio = _resample_audio(audio, _audio_len(n, fps, sr))
    return frames[idx], audio


def _trim(frames, audio, fps, sr, p):
    T = frames.shape[0]
    a = int(round(p["head"] * fps))
    b = T - int(round(p["tail"] * fps))
    if b - a < 2:
        raise ValueError(f"trim {p} leaves fewer than 2 frames of {T}")
    if audio is not None:
        start, n = _audio_len(a, fps, sr), _audio_len(b - a, fps, sr)
        audio = _fit(audio[start : start + n], n)
    return frames[a:b], audio


def _reencode_lowq(frames, audio, fps, sr, p):
    H, W = frames.shape[1:3]
    small = (max(8, int(W * p["scale"]) // 2 * 2), max(8, int(H * p["scale"]) // 2 * 2))
    return _pil_map(
        frames,
        lambda im: im.resize(small, Image.Resampling.BILINEAR).resize((W, H), Image.Resampling.BILINEAR),
    ), audio


def _overlay_text(frames, audio, fps, sr, p):
    rgb, alpha = text_patch(tuple(p["lines"]), p["font_size"], tuple(p["color"]), tuple(p["box"]))
    out = frames.astype(np.float32)
    for f in out:
        composite(f, rgb, alpha, p["x"], p["y"])
    return _u8(out), audio


def _border(frames, audio, fps, sr, p):
    T, H, W, _ = frames.shape
    b = int(p["width"])
    bh = int(round(b * H / W))
    inner = _pil_map(frames, lambda im: im.resize((W - 2 * b, H - 2 * bh), Image.Resampling.BILINEAR))
    out = np.empty_like(frames)
    out[:] = np.asarray(p["color"], np.uint8)
    out[:, bh : H - bh, b : W - b] = inner
    return out, audio


def _color_jitter(frames, audio, fps, sr, p):
    a = p["hue"]
    c, s = math.cos(a), math.sin(a)
    # hue rotation about the grey axis (Rodrigues), then saturation around luma
    k = 1.0 / 3.0
    sq = math.sqrt(k)
    rot = np.array(
        [
            [c + (1 - c) * k, k * (1 - c) - sq * s, k * (1 - c) + sq * s],
            [k * (1 - c) + sq * s, c + (1 - c) * k, k * (1 - c) - sq * s],
            [k * (1 - c) - sq * s, k * (1 - c) + sq * s, c + (1 - c) * k],
        ],
        np.float32,
    )
    x = frames.astype(np.float32) @ rot.T
    gray = x @ np.asarray([0.299, 0.587, 0.114], np.float32)
    x = gray[..., None] + p["saturation"] * (x - gray[..., None])
    return _u8(x), audio


def _brightness(frames, audio, fps, sr, p):
    x = (frames.astype(np.float32) - 128.0) * p["contrast"] + 128.0 + p["delta"]
    return _u8(x), audio


def _blur(frames, audio, fps, sr, p):
    return _pil_map(frames, lambda im: im.filter(ImageFilter.GaussianBlur(p["radius"]))), audio


def _host_background(p, W: int, H: int) -> np.ndarray:
    return np.asarray(procedural_canvas(p["host"], int(p["host_seed"]), (W, H)), np.uint8)


def _picture_in_picture(frames, audio, fps, sr, p):
    T, H, W, _ = frames.shape
    w, h = int(W * p["scale"]) // 2 * 2, int(H * p["scale"]) // 2 * 2
    x0, y0 = int(p["ox"] * (W - w - 4)) + 2, int(p["oy"] * (H - h - 4)) + 2
    small = _pil_map(frames, lambda im: im.resize((w, h), Image.Resampling.BILINEAR))
    out = np.empty_like(frames)
    out[:] = _host_background(p, W, H)
    out[:, y0 - 1 : y0 + h + 1, x0 - 1 : x0 + w + 1] = 255  # thin white frame
    out[:, y0 : y0 + h, x0 : x0 + w] = small
    return out, audio


def _pad_blur(frames, audio, fps, sr, p):
    T, H, W, _ = frames.shape
    w, h = int(W * p["scale"]) // 2 * 2, int(H * p["scale"]) // 2 * 2
    x0, y0 = (W - w) // 2, (H - h) // 2
    small = _pil_map(frames, lambda im: im.resize((w, h), Image.Resampling.BILINEAR))
    if p["mode"] == "blur":
        out = _pil_map(frames, lambda im: im.filter(ImageFilter.GaussianBlur(p["radius"])))
        out = _u8(out.astype(np.float32) * 0.7)
    else:
        out = np.empty_like(frames)
        out[:] = np.asarray(p["color"], np.uint8)
    out[:, y0 : y0 + h, x0 : x0 + w] = small
    return out, audio


def emoji_sticker(size: int, color) -> tuple[np.ndarray, np.ndarray]:
    """An emoji-like sticker (face with eyes and a smile) as RGB float32 + alpha."""
    ss = 4
    S = size * ss
    img = Image.new("RGBA", (S, S), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.ellipse((0, 0, S - 1, S - 1), fill=tuple(color) + (255,), outline=(90, 60, 0, 255), width=ss)
    for ex in (0.33, 0.67):
        d.ellipse((S * (ex - 0.07), S * 0.28, S * (ex + 0.07), S * 0.46), fill=(40, 30, 20, 255))
    d.arc((S * 0.25, S * 0.35, S * 0.75, S * 0.8), 20, 160, fill=(40, 30, 20, 255), width=2 * ss)
    a = np.asarray(img.resize((size, size), Image.Resampling.BOX), np.float32) / 255.0
    return a[:, :, :3] * 255.0, a[:, :, 3]


def _emoji_overlay(frames, audio, fps, sr, p):
    rgb, alpha = emoji_sticker(int(p["size"]), tuple(p["color"]))
    out = frames.astype(np.float32)
    T = len(out)
    for i, f in enumerate(out):
        u = i / max(1, T - 1)
        x = p["x0"] + (p["x1"] - p["x0"]) * u
        y = p["y0"] + (p["y1"] - p["y0"]) * u
        composite(f, rgb, alpha, int(round(x)), int(round(y)))
    return _u8(out), audio


def _rotate(frames, audio, fps, sr, p):
    H, W = frames.shape[1:3]
    a = math.radians(abs(p["angle"]))
    zoom = math.cos(a) + math.sin(a) * max(W / H, H / W)
    cw, ch = W / zoom, H / zoom
    box = ((W - cw) / 2, (H - ch) / 2, (W + cw) / 2, (H + ch) / 2)
    return _pil_map(
        frames,
        lambda im: im.rotate(p["angle"], resample=Image.Resampling.BILINEAR).resize((W, H), Image.Resampling.BILINEAR, box=box),
    ), audio


def _split_screen(frames, audio, fps, sr, p):
    H, W = frames.shape[1:3]
    half = _pil_map(frames, lambda im: im.resize((W // 2, H), Image.Resampling.BILINEAR))
    return np.concatenate([half, half[:, :, ::-1]], axis=2), audio


# -- audio edits ---------------------------------------------------------------------------


def _audio_shift(frames, audio, fps, sr, p):
    if audio is None:
        return frames, audio
    k = int(round(p["seconds"] * sr))
    n = len(audio)
    if k >= 0:
        out = np.concatenate([np.zeros(min(k, n), np.float32), audio[: max(0, n - k)]])
    else:
        out = np.concatenate([audio[-k:], np.zeros(min(-k, n), np.float32)])
    return frames, out.astype(np.float32)


def _volume(frames, audio, fps, sr, p):
    if audio is None:
        return frames, audio
    return frames, np.clip(audio * p["gain"], -1.0, 1.0).astype(np.float32)


def _replace_audio(frames, audio, fps, sr, p):
    duration = frames.shape[0] / fps
    music = Sound(kind=p["kind"], seed=int(p["seed"]), gain=0.8)
    return frames, _fit(render_sound(music, duration, sr), _audio_len(frames.shape[0], fps, sr))


_OPS = {
    "crop": _crop,
    "hflip": _hflip,
    "speed": _speed,
    "trim": _trim,
    "reencode_lowq": _reencode_lowq,
    "overlay_text": _overlay_text,
    "border": _border,
    "color_jitter": _color_jitter,
    "brightness": _brightness,
    "blur": _blur,
    "picture_in_picture": _picture_in_picture,
    "pad_blur": _pad_blur,
    "emoji_overlay": _emoji_overlay,
    "rotate": _rotate,
    "split_screen": _split_screen,
    "audio_shift": _audio_shift,
    "volume": _volume,
    "replace_audio": _replace_audio,
}
ALL_EDITS = tuple(_OPS)


def _color(rng: np.random.Generator) -> list[int]:
    return [int(v) for v in rng.integers(0, 256, size=3)]


def sample_params(op: str, rng: np.random.Generator, width: int, height: int, duration: float, text: str = "") -> dict[str, Any]:
    """Draw the parameters of ``op`` for a ``width`` x ``height`` video of ``duration`` s.

    ``text`` is the watermark of ``overlay_text`` (the caller adds it to the copy's OCR).
    """
    u = rng.uniform
    if op == "crop":
        frac = float(u(0.8, 0.92))
        # the window must keep [0.1, 0.9] of the frame, where on-screen text lives
        lo, hi = max(0.0, 0.9 - frac), min(0.1, 1.0 - frac)
        slack = 1.0 - frac  # offsets are stored as a share of the slack
        return {"frac": frac, "ox": float(u(lo, hi)) / slack, "oy": float(u(lo, hi)) / slack}
    if op == "hflip":
        return {}
    if op == "speed":
        return {"factor": float(rng.choice([u(0.8, 0.92), u(1.08, 1.25)]))}
    if op == "trim":
        budget = 0.3 * duration
        head = float(u(0.0, budget)) if rng.random() < 0.7 else 0.0
        return {"head": round(head, 1), "tail": round(float(u(0.1, max(0.11, budget - head))), 1)}
    if op == "reencode_lowq":
        return {"scale": float(u(0.3, 0.5)), "crf": int(rng.integers(36, 43))}
    if op == "overlay_text":
        size = int(rng.integers(9, 12))
        lo, hi = TEXT_REGION
        lines = wrap_text(text, size, int((hi - lo) * width))
        w, h = text_box_size(lines, size)
        x = int(u(lo * width, max(lo * width + 1, hi * width - w)))
        y = int(u(lo * height, max(lo * height + 1, hi * height - h)))
        box = [0, 0, 0, 0] if rng.random() < 0.5 else [0, 0, 0, 120]
        return {"lines": list(lines), "font_size": size, "x": x, "y": y, "color": _color(rng), "box": box}
    if op == "border":
        return {"width": int(rng.integers(4, 13)), "color": _color(rng)}
    if op == "color_jitter":
        return {"hue": float(u(0.3, 1.2) * rng.choice([-1, 1])), "saturation": float(u(0.6, 1.5))}
    if op == "brightness":
        return {"delta": float(u(20, 55) * rng.choice([-1, 1])), "contrast": float(u(0.8, 1.25))}
    if op == "blur":
        return {"radius": float(u(1.0, 2.2))}
    if op == "picture_in_picture":
        return {
            "scale": float(u(0.45, 0.62)),
            "ox": float(u()),
            "oy": float(u()),
            "host": str(rng.choice(["gradient", "plasma", "fbm", "stripes"])),
            "host_seed": int(rng.integers(0, 2**31)),
        }
    if op == "pad_blur":
        mode = "blur" if rng.random() < 0.6 else "color"
        return {"scale": float(u(0.62, 0.8)), "mode": mode, "radius": float(u(4, 8)), "color": _color(rng)}
    if op == "emoji_overlay":
        size = int(rng.integers(26, 44))
        return {
            "size": size,
            "color": [int(u(230, 256)), int(u(180, 220)), int(u(0, 60))],
            "x0": float(u(0, width - size)),
            "y0": float(u(0, height - size)),
            "x1": float(u(0, width - size)),
            "y1": float(u(0, height - size)),
        }
    if op == "rotate":
        return {"angle": float(u(4, 10) * rng.choice([-1, 1]))}
    if op == "split_screen":
        return {}
    if op == "audio_shift":
        return {"seconds": round(float(u(0.2, 1.0) * rng.choice([-1, 1])), 3)}
    if op == "volume":
        return {"gain": float(rng.choice([u(0.45, 0.8), u(1.2, 1.6)]))}
    if op == "replace_audio":
        return {"kind": str(rng.choice(["melody", "music", "noise"])), "seed": int(rng.integers(0, 2**31))}
    raise ValueError(f"unknown edit op {op!r} (known: {', '.join(ALL_EDITS)})")


def apply_edits(
    edits: Sequence[Edit], frames: np.ndarray, audio: np.ndarray | None, fps: float, sample_rate: int
) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Apply ``edits`` in order; returns ``(frames, audio, crf)`` (crf of the final encode)."""
    crf = DEFAULT_CRF
    for e in edits:
        fn = _OPS.get(e.op)
        if fn is None:
            raise ValueError(f"unknown edit op {e.op!r} (known: {', '.join(ALL_EDITS)})")
        frames, audio = fn(frames, audio, fps, sample_rate, e.params)
        if e.op == "reencode_lowq":
            crf = int(e.params["crf"])
        if audio is not None:
            n = _audio_len(frames.shape[0], fps, sample_rate)
            if len(audio) != n:
                raise RuntimeError(f"edit {e.op} broke audio/video sync ({len(audio)} != {n} samples)")
    return frames, audio, crf
