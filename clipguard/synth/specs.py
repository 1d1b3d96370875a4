"""Declarative, picklable descriptions of what a video shows and sounds like.

The planner (:mod:`clipguard.synth.plan`) builds these in the parent process; the
renderer (:mod:`clipguard.synth.render`) turns a :class:`VideoSpec` into frames and
audio in a worker. Every random choice that affects pixels or samples is either a field
here or derived from a ``seed`` field, so a spec renders identically in any process and
in any order.

Times in a :class:`Scene` are seconds from the start of that scene; a video is one scene
(short uploads) or several concatenated scenes (livestream recordings with scene changes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Background:
    """A template's backdrop: a real image/video or a procedural texture, panned and graded.

    The visible window is a box of ``zoom`` times the canvas size centred at ``(cx, cy)``
    (canvas fractions); it moves from ``start`` to ``end`` and back (triangle wave of
    ``period`` seconds), evaluated at ``scene.phase + t``.
    """

    source: str
    seed: int
    start: tuple[float, float, float]
    """(cx, cy, zoom) at the beginning of the pan cycle"""
    end: tuple[float, float, float]
    period: float
    video_offset: float = 0.0
    """seconds into a source video (videos loop back and forth)"""
    gains: tuple[float, float, float] = (1.0, 1.0, 1.0)
    gamma: float = 1.0
    saturation: float = 1.0
    letterbox: int = 0
    """black bars of this many pixels at the top and bottom (0 = none)"""


@dataclass(frozen=True)
class Badge:
    """A small static channel logo in a frame corner (part of a template's look)."""

    color: RGB
    corner: str  # "tl", "tr", "bl", "br"
    size: int = 14


@dataclass(frozen=True)
class Sprite:
    """A moving foreground object (a shape, or an evidence sprite such as a gun or a QR code).

    It bounces inside the frame from ``(x, y)`` (centre, pixels) at ``(vx, vy)`` pixels per
    second and is visible during ``[t0, t1)``.
    """

    shape: str
    size: int
    color: RGB
    x: float
    y: float
    vx: float = 0.0
    vy: float = 0.0
    t0: float = 0.0
    t1: float = math.inf
    seed: int = 0
    spin: float = 0.0
    """angular speed (rad/s) of rotating sprites (the trend spiral)"""
    flip: bool = False


@dataclass(frozen=True)
class TextOverlay:
    """On-screen text: ``lines`` drawn at ``(x, y)`` (top-left of the box) during ``[t0, t1)``.

    The ``ocr`` value of a clip is exactly ``" ".join(lines)`` of the overlays it shows.
    """

    lines: tuple[str, ...]
    x: int
    y: int
    font_size: int
    color: RGB = (255, 255, 255)
    box: tuple[int, int, int, int] = (0, 0, 0, 150)
    """RGBA of the box behind the text"""
    t0: float = 0.0
    t1: float = math.inf

    @property
    def text(self) -> str:
        return " ".join(self.lines)


@dataclass(frozen=True)
class Sound:
    """One audio layer during ``[t0, t1)`` of a scene.

    ``kind``: ``melody``, ``noise``, ``music`` (the Big Buck Bunny track), ``speech``
    (syllable bursts for ``text``, voice pitch ``pitch`` Hz), and the evidence sounds
    ``gunshots``, ``applause``, ``drums``, ``siren``, ``whoosh``.
    """

    kind: str
    seed: int
    gain: float = 1.0
    t0: float = 0.0
    t1: float = math.inf
    text: str = ""
    pitch: float = 0.0


@dataclass(frozen=True)
class Scene:
    """A continuous shot of ``duration`` seconds."""

    duration: float
    background: Background
    phase: float = 0.0
    """time offset into the template's pan / source video (clips of a template differ by it)"""
    badge: Badge | None = None
    sprites: tuple[Sprite, ...] = ()
    overlays: tuple[TextOverlay, ...] = ()
    sounds: tuple[Sound, ...] = ()


@dataclass(frozen=True)
class Edit:
    """One edit operation applied to a rendered video (see :mod:`clipguard.synth.edits`)."""

    op: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class VideoSpec:
    """Everything needed to render one MP4 file."""

    video_id: str
    scenes: tuple[Scene, ...]
    width: int
    height: int
    fps: float
    sample_rate: int
    has_audio: bool = True
    edits: tuple[Edit, ...] = ()

    @property
    def duration(self) -> float:
        return sum(s.duration for s in self.scenes)
