"""Rendering a :class:`~clipguard.synth.specs.VideoSpec` to frames, audio and an MP4.

A frame is composed back to front: the template background (real image / real video
segment / procedural texture, slowly panned and zoomed, colour-graded, optional letterbox),
the moving sprites (plain shapes and the evidence sprites of :mod:`.policies`: gun,
hammer, drill, QR-like code, strobe, spiral), the template's channel badge, and the text
overlays (PIL's bundled FreeType font). Work is vectorised numpy on 160x120 frames plus a
few PIL calls per frame, so a 10-s clip renders in a few tens of milliseconds.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance

from clipguard.media.writer import write_video
from clipguard.synth import sources
from clipguard.synth.draw import composite, text_patch
from clipguard.synth.edits import apply_edits
from clipguard.synth.sound import render_scene_audio
from clipguard.synth.specs import Background, Badge, Scene, Sprite, TextOverlay, VideoSpec

PLAIN_SHAPES = ("circle", "square", "triangle", "ring", "diamond", "star")
SPRITE_ASPECT = {"gun": 2.0, "hammer": 2.0, "drill": 2.0, "strobe": 1.4}
"""width / height of non-square sprites (``Sprite.size`` is the height)"""


@lru_cache(maxsize=256)
def _overlay_patch(ov: TextOverlay) -> tuple[np.ndarray, np.ndarray]:
    return text_patch(ov.lines, ov.font_size, ov.color, ov.box)


# -- sprites -------------------------------------------------------------------------------


def sprite_extent(shape: str, size: int) -> tuple[int, int]:
    """(width, height) in pixels of a sprite."""
    if shape == "qr":
        m = max(1, size // 25)
        return 25 * m, 25 * m
    return int(round(size * SPRITE_ASPECT.get(shape, 1.0))), size


def _poly(d: ImageDraw.ImageDraw, pts, w: float, h: float) -> None:
    d.polygon([(x * w, y * h) for x, y in pts], fill=255)


def _rect(d: ImageDraw.ImageDraw, x0, y0, x1, y1, w: float, h: float, r: float = 0.0) -> None:
    d.rounded_rectangle((x0 * w, y0 * h, x1 * w, y1 * h), radius=r * h, fill=255)


@lru_cache(maxsize=256)
def shape_mask(shape: str, size: int) -> np.ndarray:
    """Anti-aliased alpha mask (float32, 0..1) of a static sprite shape."""
    w, h = sprite_extent(shape, size)
    ss = 4
    W, H = w * ss, h * ss
    img = Image.new("L", (W, H), 0)
    d = ImageDraw.Draw(img)
    if shape == "circle":
        d.ellipse((0, 0, W - 1, H - 1), fill=255)
    elif shape == "square":
        _rect(d, 0.05, 0.05, 0.95, 0.95, W, H, 0.12)
    elif shape == "triangle":
        _poly(d, [(0.5, 0.02), (0.98, 0.96), (0.02, 0.96)], W, H)
    elif shape == "ring":
        d.ellipse((0, 0, W - 1, H - 1), fill=255)
        d.ellipse((W * 0.28, H * 0.28, W * 0.72, H * 0.72), fill=0)
    elif shape == "diamond":
        _poly(d, [(0.5, 0.0), (1.0, 0.5), (0.5, 1.0), (0.0, 0.5)], W, H)
    elif shape == "star":
        pts = []
        for k in range(10):
            r = 0.5 if k % 2 == 0 else 0.22
            a = -math.pi / 2 + k * math.pi / 5
            pts.append((0.5 + r * math.cos(a), 0.5 + r * math.sin(a)))
        _poly(d, pts, W, H)
    elif shape == "gun":  # pistol facing right: slide, frame, angled grip, trigger guard
        _rect(d, 0.04, 0.10, 0.98, 0.36, W, H, 0.04)
        _rect(d, 0.90, 0.04, 0.95, 0.12, W, H)
        _rect(d, 0.30, 0.34, 0.74, 0.48, W, H)
        _poly(d, [(0.08, 0.34), (0.33, 0.34), (0.27, 0.97), (0.01, 0.93)], W, H)
        d.ellipse((0.36 * W, 0.36 * H, 0.56 * W, 0.74 * H), outline=255, width=max(1, int(0.07 * H)))
    elif shape == "hammer":  # long handle, heavy head with a claw
        _rect(d, 0.02, 0.42, 0.80, 0.60, W, H, 0.06)
        _rect(d, 0.70, 0.06, 0.90, 0.94, W, H, 0.05)
        _poly(d, [(0.90, 0.10), (0.99, 0.02), (0.99, 0.20), (0.90, 0.30)], W, H)
    elif shape == "drill":  # body, chuck, bit, handle, battery
        _rect(d, 0.16, 0.08, 0.72, 0.44, W, H, 0.12)
        _rect(d, 0.72, 0.16, 0.84, 0.36, W, H)
        _rect(d, 0.84, 0.23, 0.99, 0.29, W, H)
        _rect(d, 0.36, 0.40, 0.54, 0.86, W, H)
        _rect(d, 0.28, 0.82, 0.62, 0.99, W, H, 0.05)
    elif shape == "strobe":
        _rect(d, 0.0, 0.0, 1.0, 1.0, W, H, 0.1)
    else:
        raise ValueError(f"no static mask for sprite shape {shape!r}")
    img = img.resize((w, h), Image.Resampling.BOX)
    return np.asarray(img, dtype=np.float32) / 255.0


@lru_cache(maxsize=128)
def qr_patch(size: int, seed: int) -> np.ndarray:
    """A QR-code-like block pattern (21x21 modules, three finder squares, quiet zone), RGB."""
    rng = np.random.default_rng([seed & 0xFFFFFFFF, 0x0C0DE])
    n = 21
    mod = rng.random((n, n)) < 0.5
    finder = np.zeros((7, 7), bool)
    finder[[0, 6], :] = finder[:, [0, 6]] = True
    finder[2:5, 2:5] = True
    for r, c in ((0, 0), (0, n - 7), (n - 7, 0)):
        mod[max(0, r - 1) : r + 8, max(0, c - 1) : c + 8] = False  # separators
        mod[r : r + 7, c : c + 7] = finder
    mod[6, 8:-8] = np.arange(n - 16) % 2 == 0  # timing patterns
    mod[8:-8, 6] = np.arange(n - 16) % 2 == 0
    full = np.zeros((n + 4, n + 4), bool)
    full[2:-2, 2:-2] = mod
    m = sprite_extent("qr", size)[0] // (n + 4)
    img = np.where(np.kron(full, np.ones((m, m), bool))[..., None], 15.0, 250.0)
    return np.repeat(img, 3, axis=2).astype(np.float32)


def _spiral(size: int, angle: float, color) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    c = (size - 1) / 2.0
    dx, dy = xx - c, yy - c
    r = np.hypot(dx, dy) / c
    th = np.arctan2(dy, dx)
    arms = np.sin(3 * th + 9.0 * r - angle)
    alpha = np.clip((arms + 0.1) * 3.0, 0, 1) * np.clip((1.0 - r) * c, 0, 1)
    base = np.asarray(color, np.float32)
    rgb = np.broadcast_to(base, (size, size, 3)) * (0.75 + 0.25 * r[..., None])
    ring = np.clip(1.0 - np.abs(r - 0.95) * c, 0, 1)
    alpha = np.maximum(alpha, ring)
    return rgb, alpha


@lru_cache(maxsize=512)
def _solid_patch(
    shape: str, size: int, color, flip: bool, alpha_scale: float = 1.0, shaded: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """RGB and alpha of a one-colour sprite (vertical shading unless ``shaded`` is False)."""
    mask = shape_mask(shape, size)
    if flip:
        mask = np.ascontiguousarray(mask[:, ::-1])
    shade = np.linspace(1.12, 0.82, mask.shape[0], dtype=np.float32)[:, None, None]
    rgb = np.asarray(color, np.float32) * (shade if shaded else np.float32(1.0))
    rgb = np.clip(np.broadcast_to(rgb, mask.shape + (3,)), 0, 255)
    return rgb, mask * np.float32(alpha_scale)


def sprite_patch(sp: Sprite, t: float, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """RGB (float32, 0..255) and alpha of a sprite at scene time ``t``."""
    if sp.shape == "qr":
        rgb = qr_patch(sp.size, sp.seed)
        return rgb, np.ones(rgb.shape[:2], np.float32)
    if sp.shape == "spiral":
        return _spiral(sp.size, sp.spin * t, sp.color)
    if sp.shape == "strobe":  # flashes at fps/2: bright on even frames, dark on odd ones
        if int(math.floor(t * fps + 1e-6)) % 2 == 0:
            return _solid_patch("strobe", sp.size, sp.color, sp.flip, 0.95, shaded=False)
        return _solid_patch("strobe", sp.size, (25, 25, 30), sp.flip, 0.85, shaded=False)
    return _solid_patch(sp.shape, sp.size, sp.color, sp.flip)


def _bounce(p0: float, v: float, t: float, lo: float, hi: float) -> float:
    span = hi - lo
    if span <= 0:
        return (lo + hi) / 2
    u = (p0 - lo + v * t) % (2 * span)
    return lo + (u if u <= span else 2 * span - u)


def sprite_position(sp: Sprite, t: float, width: int, height: int) -> tuple[float, float]:
    w, h = sprite_extent(sp.shape, sp.size)
    x = _bounce(sp.x, sp.vx, t, w / 2, width - w / 2)
    y = _bounce(sp.y, sp.vy, t, h / 2, height - h / 2)
    return x, y


# -- background ----------------------------------------------------------------------------


def _tri(x: float) -> float:
    """Triangle wave 0 -> 1 -> 0 with period 1, eased at the turning points."""
    u = 1.0 - abs((x % 1.0) * 2.0 - 1.0)
    return u * u * (3 - 2 * u)


def _pan_box(bg: Background, tau: float, canvas: tuple[int, int]) -> tuple[float, float, float, float]:
    u = _tri(tau / bg.period)
    cx, cy, z = (a + (b - a) * u for a, b in zip(bg.start, bg.end, strict=True))
    cw, ch = canvas
    bw, bh = z * cw, z * ch
    left = min(max(0.0, cx * cw - bw / 2), cw - bw)
    top = min(max(0.0, cy * ch - bh / 2), ch - bh)
    return left, top, left + bw, top + bh


def _grade(img: Image.Image, gains: tuple[float, float, float], gamma: float, saturation: float) -> Image.Image:
    """Per-channel gain and gamma (lookup tables), then saturation."""
    x = np.arange(256, dtype=np.float64) / 255.0
    lut = np.concatenate([np.clip(255.0 * g * x**gamma + 0.5, 0, 255) for g in gains]).astype(np.uint8)
    return ImageEnhance.Color(img.point(lut.tolist())).enhance(saturation)


@lru_cache(maxsize=32)
def _graded_still(bg: Background, size: tuple[int, int]) -> Image.Image:
    if sources.source_kind(bg.source) == "image":
        canvas = sources.image_canvas(bg.source, size)
    else:
        canvas = sources.procedural_canvas(bg.source.split(":", 1)[1], bg.seed, size)
    return _grade(canvas, bg.gains, bg.gamma, bg.saturation)


@lru_cache(maxsize=6)
def _graded_video(
    source: str, grade: tuple[tuple[float, float, float], float, float], size: tuple[int, int]
) -> tuple[tuple[Image.Image, ...], float]:
    frames, fps = sources.video_canvases(source, size)
    return tuple(_grade(f, *grade) for f in frames), fps


def _source_frame(bg: Background, tau: float, frame_size: tuple[int, int]) -> Image.Image:
    """The graded canvas (or video frame) the background shows at template time ``tau``."""
    size = sources.canvas_size(bg.source, frame_size)
    if sources.source_kind(bg.source) != "video":
        return _graded_still(bg, size)
    frames, fps = _graded_video(bg.source, (bg.gains, bg.gamma, bg.saturation), size)
    n = len(frames)
    k = int(math.floor((bg.video_offset + tau) * fps))
    period = max(1, 2 * (n - 1))  # play forwards, then backwards
    k %= period
    return frames[k if k < n else period - k]


def background_frame(bg: Background, tau: float, frame_size: tuple[int, int]) -> np.ndarray:
    """The graded, panned background at template time ``tau`` as float32 H x W x 3."""
    src = _source_frame(bg, tau, frame_size)
    box = _pan_box(bg, tau, src.size)
    img = src.resize(frame_size, Image.Resampling.BILINEAR, box=box)
    out = np.asarray(img, dtype=np.float32)
    if bg.letterbox:
        out[: bg.letterbox] = 0.0
        out[-bg.letterbox :] = 0.0
    return out


@lru_cache(maxsize=64)
def _badge_patch(badge: Badge) -> tuple[np.ndarray, np.ndarray]:
    s, ss = badge.size, 4
    img = Image.new("RGBA", (s * ss, s * ss), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle((0, 0, s * ss - 1, s * ss - 1), radius=s, fill=tuple(badge.color) + (230,))
    d.ellipse((s * ss * 0.25, s * ss * 0.25, s * ss * 0.75, s * ss * 0.75), fill=(255, 255, 255, 240))
    a = np.asarray(img.resize((s, s), Image.Resampling.BOX), dtype=np.float32) / 255.0
    return a[:, :, :3] * 255.0, a[:, :, 3]


def _badge_origin(badge: Badge, width: int, height: int, letterbox: int) -> tuple[int, int]:
    m = 4
    x = m if badge.corner[1] == "l" else width - badge.size - m
    y = letterbox + m if badge.corner[0] == "t" else height - letterbox - badge.size - m
    return x, y


# -- scenes and videos ---------------------------------------------------------------------


def n_frames(duration: float, fps: float) -> int:
    return int(round(duration * fps))


def render_scene_frames(scene: Scene, width: int, height: int, fps: float) -> np.ndarray:
    """Frames (T x H x W x 3 uint8) of one scene."""
    T = n_frames(scene.duration, fps)
    out = np.empty((T, height, width, 3), np.uint8)
    for i in range(T):
        t = i / fps
        frame = background_frame(scene.background, scene.phase + t, (width, height))
        for sp in scene.sprites:
            if sp.t0 <= t < sp.t1:
                rgb, alpha = sprite_patch(sp, t, fps)
                x, y = sprite_position(sp, t, width, height)
                h, w = alpha.shape
                composite(frame, rgb, alpha, int(round(x - w / 2)), int(round(y - h / 2)))
        if scene.badge is not None:
            rgb, alpha = _badge_patch(scene.badge)
            origin = _badge_origin(scene.badge, width, height, scene.background.letterbox)
            composite(frame, rgb, alpha, *origin)
        for ov in scene.overlays:
            if ov.t0 <= t < ov.t1:
                rgb, alpha = _overlay_patch(ov)
                composite(frame, rgb, alpha, ov.x, ov.y)
        out[i] = np.clip(frame + 0.5, 0, 255).astype(np.uint8)
    return out


def render_video(spec: VideoSpec) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Render ``spec``: frames (T x H x W x 3 uint8), mono audio (or None) and the x264 CRF."""
    frames = np.concatenate([render_scene_frames(s, spec.width, spec.height, spec.fps) for s in spec.scenes], axis=0)
    audio = None
    if spec.has_audio:
        parts = [render_scene_audio(s, spec.sample_rate) for s in spec.scenes]
        audio = np.concatenate(parts).astype(np.float32)
    return apply_edits(spec.edits, frames, audio, spec.fps, spec.sample_rate)


def render_to_file(spec: VideoSpec, path: Path) -> Path:
    """Render ``spec`` and write it to ``path`` (atomically) with single-threaded libx264 +
    AAC, so that the file is byte-identical whenever the spec is."""
    frames, audio, crf = render_video(spec)
    return write_video(path, frames, spec.fps, audio=audio, sample_rate=spec.sample_rate, crf=crf, deterministic=True)
