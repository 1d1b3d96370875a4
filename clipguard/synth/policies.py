"""The policy taxonomy of the corpus and the evidence that makes a clip violate it.

A clip's labels are never drawn directly: the planner decides which *evidence* a clip
shows (tags below, e.g. ``weapon_sprite`` or ``qr``), renders exactly that evidence, and
:func:`labels_for` derives the labels from the tags present. Copies and stream windows are
labelled the same way from the evidence they still contain (a copy whose soundtrack was
replaced loses its audio evidence; a 20-s window only has the evidence it overlaps).

=================  ======================================  ==============================
policy             violation pattern (all tags present)    benign look-alikes
=================  ======================================  ==============================
weapons            ``weapon_sprite`` (visual)              ``tool_sprite``
graphic_violence   ``gunshots`` (audio: bursts + scream)   ``drums``, ``applause``
hate_speech        ``slur_text`` (title / OCR / ASR)       ``vocab_text``
scam               ``qr`` + ``giveaway_text``              ``qr`` alone, ``giveaway_text``
                                                           alone
dangerous_acts     ``strobe`` + ``siren``                  ``strobe`` alone, ``siren``
                   (trend) ``spiral`` + ``whoosh``         alone
                   (trend) ``spiral`` + ``trend_hashtag``
=================  ======================================  ==============================

So a unimodal model can solve weapons (vision), graphic violence (audio) and hate speech
(text), but scam needs vision + text and dangerous acts needs vision + audio. The trend
pattern (:data:`TREND`) appears only from the trend day, labelled ``dangerous_acts``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clipguard.synth import text as T
from clipguard.synth.render import sprite_extent
from clipguard.synth.specs import Sound, Sprite

POLICIES: tuple[str, ...] = ("weapons", "graphic_violence", "hate_speech", "scam", "dangerous_acts")

EVIDENCE_MODALITY: dict[str, str] = {
    "weapon_sprite": "visual",
    "tool_sprite": "visual",
    "qr": "visual",
    "strobe": "visual",
    "spiral": "visual",
    "gunshots": "audio",
    "drums": "audio",
    "applause": "audio",
    "siren": "audio",
    "whoosh": "audio",
    "slur_text": "text",
    "vocab_text": "text",
    "giveaway_text": "text",
    "trend_hashtag": "text",
}

RULES: dict[str, tuple[frozenset[str], ...]] = {
    "weapons": (frozenset({"weapon_sprite"}),),
    "graphic_violence": (frozenset({"gunshots"}),),
    "hate_speech": (frozenset({"slur_text"}),),
    "scam": (frozenset({"qr", "giveaway_text"}),),
    "dangerous_acts": (
        frozenset({"strobe", "siren"}),
        frozenset({"spiral", "whoosh"}),
        frozenset({"spiral", "trend_hashtag"}),
    ),
}
"""A policy is violated when all tags of any of its patterns are present."""

TEXT_FIELDS: dict[str, tuple[str, ...]] = {
    "slur_text": ("title", "ocr", "asr"),
    "vocab_text": ("title", "ocr", "asr"),
    "giveaway_text": ("title", "ocr", "asr"),
    "trend_hashtag": ("title", "ocr"),
}
"""Where each text tag may be written (a non-empty subset is drawn per clip)."""


@dataclass(frozen=True)
class Pattern:
    """A set of evidence tags shown together; ``policy`` is None for a benign look-alike."""

    name: str
    tags: frozenset[str]
    policy: str | None

    @property
    def needs_audio(self) -> bool:
        return any(EVIDENCE_MODALITY[t] == "audio" for t in self.tags)


VIOLATIONS: dict[str, Pattern] = {
    "weapons": Pattern("weapon", frozenset({"weapon_sprite"}), "weapons"),
    "graphic_violence": Pattern("gunfire", frozenset({"gunshots"}), "graphic_violence"),
    "hate_speech": Pattern("slur", frozenset({"slur_text"}), "hate_speech"),
    "scam": Pattern("qr_giveaway", frozenset({"qr", "giveaway_text"}), "scam"),
    "dangerous_acts": Pattern("strobe_siren", frozenset({"strobe", "siren"}), "dangerous_acts"),
}

LOOKALIKES: tuple[Pattern, ...] = (
    Pattern("tool", frozenset({"tool_sprite"}), None),
    Pattern("drums", frozenset({"drums"}), None),
    Pattern("applause", frozenset({"applause"}), None),
    Pattern("shared_vocab", frozenset({"vocab_text"}), None),
    Pattern("qr_only", frozenset({"qr"}), None),
    Pattern("giveaway_only", frozenset({"giveaway_text"}), None),
    Pattern("strobe_only", frozenset({"strobe"}), None),
    Pattern("siren_only", frozenset({"siren"}), None),
)

TREND = Pattern("spinz_trend", frozenset({"spiral", "whoosh", "trend_hashtag"}), "dangerous_acts")
"""The new violation pattern that starts on the trend day."""


def check_taxonomy(policies: tuple[str, ...]) -> None:
    """The generator makes evidence for exactly :data:`POLICIES`; refuse anything else."""
    if set(policies) != set(POLICIES):
        raise ValueError(
            f"the synthetic corpus implements the policies {list(POLICIES)}; cfg.policy.policies is {list(policies)}"
        )


def labels_for(tags: frozenset[str] | set[str], policies: tuple[str, ...] = POLICIES) -> list[str]:
    """Policies violated by a clip showing ``tags`` (in taxonomy order)."""
    unknown = set(tags) - set(EVIDENCE_MODALITY)
    if unknown:
        raise ValueError(f"unknown evidence tags {sorted(unknown)}")
    return [p for p in policies if any(pat <= tags for pat in RULES[p])]


# -- rendering the evidence ------------------------------------------------------------------


def _dark(rng: np.random.Generator, lo: int, hi: int) -> tuple[int, int, int]:
    g = int(rng.integers(lo, hi))
    tint = rng.integers(-6, 7, size=3)
    return tuple(int(np.clip(g + d, 0, 255)) for d in tint)  # type: ignore[return-value]


def _placed(shape: str, size: int, rng: np.random.Generator, width: int, height: int, speed: float) -> dict:
    """Start position (central region, so mild crops keep it) and velocity of a sprite."""
    w, h = sprite_extent(shape, size)
    x = float(rng.uniform(max(w / 2, 0.3 * width), min(width - w / 2, 0.7 * width)))
    y = float(rng.uniform(max(h / 2, 0.3 * height), min(height - h / 2, 0.7 * height)))
    ang = float(rng.uniform(0, 2 * np.pi))
    return {"x": x, "y": y, "vx": speed * float(np.cos(ang)), "vy": speed * float(np.sin(ang))}


def evidence_sprite(tag: str, rng: np.random.Generator, width: int, height: int, span: tuple[float, float]) -> Sprite:
    """The sprite showing visual evidence ``tag`` during ``span`` (scene seconds)."""
    seed = int(rng.integers(0, 2**31))
    flip = bool(rng.random() < 0.5)
    spin = 0.0
    if tag == "weapon_sprite":
        shape, size, color, speed = "gun", int(rng.integers(20, 30)), _dark(rng, 14, 40), rng.uniform(4, 18)
    elif tag == "tool_sprite":  # similar size, similar darkness, different silhouette
        shape = "hammer" if rng.random() < 0.5 else "drill"
        size, color, speed = int(rng.integers(20, 30)), _dark(rng, 35, 85), rng.uniform(4, 18)
    elif tag == "qr":
        shape, size, color, speed = "qr", 50, (0, 0, 0), rng.uniform(0, 3)
    elif tag == "strobe":
        shape, size, speed = "strobe", int(rng.integers(28, 40)), 0.0
        color = (255, 255, int(rng.integers(200, 256)))
    elif tag == "spiral":
        shape, size, speed = "spiral", int(rng.integers(36, 50)), rng.uniform(6, 20)
        color = (int(rng.integers(200, 256)), int(rng.integers(0, 80)), int(rng.integers(150, 256)))
        spin = float(rng.uniform(4.0, 8.0) * rng.choice([-1, 1]))
    else:
        raise ValueError(f"{tag!r} is not a visual evidence tag")
    return Sprite(
        shape,
        size,
        color,
        t0=span[0],
        t1=span[1],
        seed=seed,
        spin=spin,
        flip=flip,
        **_placed(shape, size, rng, width, height, float(speed)),
    )


def evidence_sound(tag: str, rng: np.random.Generator, span: tuple[float, float]) -> Sound:
    """The sound layer carrying audio evidence ``tag`` during ``span`` (scene seconds)."""
    if EVIDENCE_MODALITY.get(tag) != "audio":
        raise ValueError(f"{tag!r} is not an audio evidence tag")
    gains = {"gunshots": 1.0, "drums": 0.9, "applause": 0.9, "siren": 0.8, "whoosh": 1.0}
    return Sound(tag, seed=int(rng.integers(0, 2**31)), gain=gains[tag], t0=span[0], t1=span[1])


def evidence_phrase(tag: str, rng: np.random.Generator, topic: str, lookalike: bool = False) -> str:
    """The text carrying text evidence ``tag``.

    A lone ``giveaway_text`` look-alike uses the very wording of the scams half of the time
    (so text alone cannot tell) and contest wording otherwise.
    """
    if tag == "slur_text":
        return T.hate_phrase(rng, topic)
    if tag == "vocab_text":
        return T.benign_vocab_phrase(rng, topic)
    if tag == "giveaway_text":
        if lookalike and rng.random() < 0.5:
            return T.contest_phrase(rng, topic)
        return T.giveaway_phrase(rng)
    if tag == "trend_hashtag":
        return T.trend_phrase(rng)
    raise ValueError(f"{tag!r} is not a text evidence tag")


def benign_caption(pattern: Pattern, rng: np.random.Generator) -> str | None:
    """The caption a look-alike shows beside its evidence (menus and tickets next to benign
    QR codes), or None."""
    if pattern.name == "qr_only" and rng.random() < 0.6:
        return T.qr_caption(rng)
    return None
