"""Drawing primitives shared by the renderer and the edit operations: text and compositing.

Text uses the FreeType font bundled with Pillow (``ImageFont.load_default(size=...)``), so
no system font is needed and the glyphs are identical on every machine.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

TEXT_PAD = 2
"""pixels of box padding around overlay text"""


@lru_cache(maxsize=16)
def font(size: int) -> ImageFont.FreeTypeFont:
    f = ImageFont.load_default(size=size)
    if not isinstance(f, ImageFont.FreeTypeFont):
        raise RuntimeError("Pillow was built without FreeType: cannot render sized text")
    return f


def _line_height(size: int) -> int:
    asc, desc = font(size).getmetrics()
    return asc + desc


def wrap_text(text: str, font_size: int, max_width: int) -> tuple[str, ...]:
    """Greedy word wrap of ``text`` to lines no wider than ``max_width`` pixels."""
    f = font(font_size)
    lines: list[str] = []
    cur = ""
    for w in text.split():
        cand = f"{cur} {w}" if cur else w
        if cur and f.getlength(cand) > max_width:
            lines.append(cur)
            cur = w
        else:
            cur = cand
    if cur:
        lines.append(cur)
    return tuple(lines)


def text_box_size(lines: tuple[str, ...], font_size: int) -> tuple[int, int]:
    """(width, height) in pixels of the boxed overlay for ``lines``."""
    f = font(font_size)
    w = max((math.ceil(f.getlength(s)) for s in lines), default=0)
    return w + 2 * TEXT_PAD, len(lines) * _line_height(font_size) + 2 * TEXT_PAD


def text_patch(lines: tuple[str, ...], font_size: int, color, box) -> tuple[np.ndarray, np.ndarray]:
    """RGB (float32) and alpha of boxed text, for compositing."""
    w, h = text_box_size(lines, font_size)
    img = Image.new("RGBA", (w, h), tuple(box))
    d = ImageDraw.Draw(img)
    lh = _line_height(font_size)
    for i, line in enumerate(lines):
        d.text((TEXT_PAD, TEXT_PAD + i * lh), line, font=font(font_size), fill=tuple(color) + (255,))
    a = np.asarray(img, dtype=np.float32) / 255.0
    return a[:, :, :3] * 255.0, a[:, :, 3]


def composite(frame: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, x0: int, y0: int) -> None:
    """Alpha-blend a patch into ``frame`` (float32 H x W x 3) with its top-left at (x0, y0)."""
    H, W = frame.shape[:2]
    h, w = alpha.shape
    fx0, fy0, fx1, fy1 = max(0, x0), max(0, y0), min(W, x0 + w), min(H, y0 + h)
    if fx1 <= fx0 or fy1 <= fy0:
        return
    px0, py0 = fx0 - x0, fy0 - y0
    a = alpha[py0 : py0 + fy1 - fy0, px0 : px0 + fx1 - fx0, None]
    c = rgb[py0 : py0 + fy1 - fy0, px0 : px0 + fx1 - fx0]
    region = frame[fy0:fy1, fx0:fx1]
    region += a * (c - region)
