"""An unbounded stream of distinct scenes for copy-detection pretraining.

Self-supervised copy descriptors (SSCD, the VSC22 winners) learn what a copy is by telling
*many* instances apart under strong edits. A corpus's own train clips are a few hundred
instances over a few dozen templates: an encoder trained on them alone memorises the
templates. :class:`SceneStream` adds as many fresh instances per step as asked: a
background (a random crop of a real image or video frame shipped in our wheels, or a
procedural texture from a fresh seed) with 1–6 random shapes and sometimes a line of
random text on it. No two draws are alike, so the only way to match two augmented views
of one scene is by its content and layout.

Real media of the sources the corpus keeps for its test split
(:data:`clipguard.synth.sources.HELDOUT_SOURCES`) are left out, so pretraining never
sees a held-out source.
"""

from __future__ import annotations

import string

import numpy as np
import torch
from PIL import Image, ImageDraw

from clipguard.synth import sources

_CANVAS_SCALE = 3
"""real canvases are loaded at this many times the frame size (room for random crops)"""
_VIDEO_FRAMES_KEPT = 24
"""frames kept per sample video (evenly spaced)"""


class SceneStream:
    """Draws ``size`` x ``size`` uint8 RGB scenes, reproducibly from a ``torch.Generator``."""

    def __init__(self, size: int, real_share: float = 0.5, exclude: tuple[str, ...] = sources.HELDOUT_SOURCES) -> None:
        if size < 8:
            raise ValueError(f"scene size must be >= 8, got {size}")
        if not 0.0 <= real_share <= 1.0:
            raise ValueError(f"real_share must be in [0, 1], got {real_share}")
        self.size = int(size)
        self.real_share = float(real_share)
        canvas = (self.size * _CANVAS_SCALE, self.size * _CANVAS_SCALE)
        real: list[np.ndarray] = []
        for name in sources.IMAGE_SOURCES:
            if name not in exclude:
                real.append(np.array(sources.image_canvas(name, canvas)))
        for name in sources.VIDEO_SOURCES:
            if name in exclude:
                continue
            frames, _ = sources.video_canvases(name, canvas)
            step = max(1, len(frames) // _VIDEO_FRAMES_KEPT)
            real.extend(np.array(f) for f in frames[::step])
        self.real = real

    def _background(self, rng: np.random.Generator) -> Image.Image:
        s = self.size
        if self.real and rng.random() < self.real_share:
            img = self.real[int(rng.integers(len(self.real)))]
            side = int(rng.integers(s, img.shape[0] + 1))
            y, x = int(rng.integers(0, img.shape[0] - side + 1)), int(rng.integers(0, img.shape[1] - side + 1))
            crop = Image.fromarray(img[y : y + side, x : x + side].copy())  # drawing must never touch the canvas
            return crop.resize((s, s), Image.Resampling.BILINEAR)
        kind = sources.PROCEDURAL_KINDS[int(rng.integers(len(sources.PROCEDURAL_KINDS)))]
        return sources.procedural_canvas(kind, int(rng.integers(0, 2**31)), (s, s))

    def _scene(self, rng: np.random.Generator) -> np.ndarray:
        s = self.size
        img = self._background(rng).copy()
        draw = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(1, 7))):
            w, h = (float(v) for v in rng.uniform(0.1, 0.45, size=2) * s)
            x0, y0 = float(rng.uniform(-0.1 * s, s - 0.5 * w)), float(rng.uniform(-0.1 * s, s - 0.5 * h))
            color = tuple(int(c) for c in rng.integers(0, 256, size=3))
            kind = int(rng.integers(4))
            if kind == 0:
                draw.ellipse((x0, y0, x0 + w, y0 + h), fill=color)
            elif kind == 1:
                draw.rectangle((x0, y0, x0 + w, y0 + h), fill=color)
            elif kind == 2:
                pts = [(x0 + w * float(a), y0 + h * float(b)) for a, b in rng.uniform(0, 1, size=(3, 2))]
                draw.polygon(pts, fill=color)
            else:
                draw.ellipse((x0, y0, x0 + w, y0 + h), outline=color, width=max(1, int(0.15 * min(w, h))))
        if rng.random() < 0.3:
            letters = "".join(rng.choice(list(string.ascii_letters + string.digits), size=int(rng.integers(3, 9))))
            color = tuple(int(c) for c in rng.integers(0, 256, size=3))
            draw.text((float(rng.uniform(0, 0.5 * s)), float(rng.uniform(0, 0.8 * s))), letters, fill=color)
        return np.array(img, dtype=np.uint8)  # a copy: asarray may keep pointing at the freed image

    def sample(self, n: int, frames: int, g: torch.Generator) -> torch.Tensor:
        """``n`` new scenes, each a still "clip" of ``frames`` identical frames: n x frames x S x S x 3 uint8."""
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=g)))
        stills = torch.from_numpy(np.stack([self._scene(rng) for _ in range(n)]))
        return stills[:, None].expand(n, frames, *stills.shape[1:]).contiguous()
