"""Sampling the corpus: templates, clips, labels, livestreams, RCI pairs, days and splits.

:func:`plan_corpus` decides *everything* — which videos exist, what each shows, every
manifest row — without rendering a pixel; the result is a :class:`CorpusPlan` of rows and
:class:`~clipguard.synth.specs.VideoSpec` s. Rendering is then embarrassingly parallel.

Structure of the corpus (see also :mod:`clipguard.synth.policies`):

* **Templates** (~1 per 7 clips): a background source (real image, real video or
  procedural texture) with its pan/zoom path, colour grade, letterbox, channel badge and
  text layout. A base clip is a template plus its own *content*: moving shapes, an
  optional caption (``ocr``), a title, an optional transcript (``asr``, spoken as
  syllable bursts) and a soundtrack. Clips of a template look alike but differ in content.
* **Labels** come from the evidence a clip shows: ≈ ``violation_rate`` of the base clips
  show a violation pattern, ≈ ``lookalike_rate`` a benign look-alike; from ``trend_day`` on,
  ≈ ``trend_rate`` of the clips show the new trend pattern (spiral + whoosh + hashtag).
* **Livestreams**: ``streams`` recordings of ``stream_seconds``, spread over the days, made
  of 8–22-s segments (scene changes) with evidence confined to a sub-interval of a
  segment; cut into windows by :func:`clipguard.media.clipper.plan_windows`; a window's
  labels are the policies whose evidence overlaps it. Pre-trend recordings go to train,
  test and val in turn (then train), using only templates of their split.
* **RCI pairs** (≈ ``clips * pairs_per_clip``, ≈ ``positive_rate`` positive): positives are
  new copy videos — ``visual`` (the query edited by 1–3 ops), ``audio`` (another clip of
  the template reusing the query's soundtrack), ``text`` (another clip of the template
  with the query's title, caption and transcript); negatives are hard (same template;
  some are near-visual duplicates with different audio and text) or easy (a visually
  close or random clip of another template).
* **Splits**: before ``trend_day`` by template (≈70/15/15 train/val/test; templates of
  held-out source media are test-only and appear only before the trend day); from
  ``trend_day`` on, ``traffic``. Held-out edit types appear only in test pairs, the trend
  edit style (``split_screen``) only from the trend day.
"""

from __future__ import annotations

import colorsys
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import numpy as np

from clipguard.config import MediaConfig, SynthConfig
from clipguard.media.clipper import plan_windows
from clipguard.synth import edits as E
from clipguard.synth import policies as P
from clipguard.synth import sources
from clipguard.synth import text as T
from clipguard.synth.draw import text_box_size, wrap_text
from clipguard.synth.render import PLAIN_SHAPES, background_frame
from clipguard.synth.sound import speech_timeline
from clipguard.synth.specs import Background, Badge, Edit, Scene, Sound, Sprite, TextOverlay, VideoSpec

GENERATOR_VERSION = "1.0"

UPLOAD, LIVESTREAM = "upload", "livestream"
SPLIT_SHARES = {"train": 0.70, "val": 0.15, "test": 0.15}
TEMPLATE_CLIPS = 7
"""base clips per template, on average"""
NO_AUDIO_RATE = 0.03
CAPTION_RATE = 0.5
SPEECH_RATE = 0.45
REASON_SHARES = {"visual": 0.6, "audio": 0.2, "text": 0.2}
HARD_NEGATIVE_SHARE = 0.4
NEAR_DUP_SHARE = 0.15
"""share of hard negatives that are near-visual duplicates (new videos)"""
HELDOUT_EDIT_SHARE = 0.7
"""share of test-split visual copies made with a held-out edit type (the types take turns)"""
TREND_EDIT_SHARE = 0.5
"""share of traffic visual copies made with the trend edit style"""
REPLACE_AUDIO_SHARE = 0.25
SOUNDTRACKS = (("melody",), ("music",), ("noise",), ("melody", "noise"))
SOUNDTRACK_SHARES = (0.4, 0.25, 0.15, 0.2)
"""soundtrack layers of a clip (``music`` is the Big Buck Bunny track) and their shares"""
STREAM_SEGMENT_S = (8.0, 22.0)
STREAM_VIOLATION_RATE = 0.35
STREAM_LOOKALIKE_RATE = 0.15
WINDOW_MIN_OVERLAP_S = 0.5
"""evidence (or a caption) counts for a stream window when it overlaps it this long"""

SOURCE_TOPICS = {
    "astronaut": "science", "brick": "diy", "camera": "travel", "chelsea": "pets", "checkerboard": "gaming",
    "clock": "diy", "coffee": "cooking", "coins": "diy", "colorwheel": "music", "grass": "travel",
    "gravel": "sports", "horse": "pets", "hubble_deep_field": "science", "immunohistochemistry": "science",
    "logo": "gaming", "moon": "science", "retina": "science", "rocket": "science",
    "stereo_motorcycle": "sports", "bigbuckbunny": "pets", "bikes": "sports", "carphone": "travel",
}  # fmt: skip
"""Topic of the text of a template's clips (procedural backgrounds get a random topic)."""

# RNG streams: every item draws from default_rng([seed, stream, index]).
_RNG_GLOBAL, _RNG_TEMPLATE, _RNG_CLIP, _RNG_STREAM, _RNG_PAIR, _RNG_COPY = range(6)


# -- records -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    template_id: str
    source: str
    topic: str
    background: Background
    badge: Badge
    text_anchor: str  # "top" | "middle" | "bottom"
    text_align: str  # "center" | "left"
    font_size: int
    text_color: tuple[int, int, int]
    text_box: tuple[int, int, int, int]
    split: str
    heldout_source: bool


@dataclass(frozen=True)
class TextPart:
    """Title, on-screen caption and transcript of a clip, and which evidence each carries."""

    title: str
    overlay: TextOverlay | None
    asr: str
    tags: dict[str, frozenset[str]]  # "title" / "ocr" / "asr" -> evidence tags

    @property
    def ocr(self) -> str:
        return self.overlay.text if self.overlay is not None else ""


@dataclass(frozen=True)
class Content:
    """One scene with its text and the evidence it shows (per modality)."""

    scene: Scene
    text: TextPart
    visual_tags: frozenset[str]
    audio_tags: frozenset[str]
    span: tuple[float, float]
    """where the visual/audio evidence lies (scene seconds)"""

    @property
    def tags(self) -> frozenset[str]:
        return self.visual_tags | self.audio_tags | frozenset().union(*self.text.tags.values())


@dataclass(frozen=True)
class _Segment:
    """One scene of a livestream recording, starting ``offset`` seconds into it."""

    content: Content
    offset: float
    template: Template


@dataclass(eq=False)
class Video:
    key: int
    scenes: tuple[Scene, ...]
    has_audio: bool
    ts_us: int
    stream: bool = False
    edits: tuple[Edit, ...] = ()
    video_id: str = ""


@dataclass(eq=False)
class Clip:
    key: int
    video: Video
    start_s: float
    end_s: float
    title: str
    ocr: str
    asr: str
    tags: frozenset[str]
    ts_us: int
    source: str
    split: str
    template: Template
    day: int
    trend: bool
    content: Content | None = None
    """the scene of a short upload (None for livestream windows)"""
    clip_id: str = ""


@dataclass(eq=False)
class Pair:
    query: Clip
    candidate: Clip
    label: int
    reason: str
    ts_us: int
    edit_types: tuple[str, ...] = ()
    hard_negative: bool = False
    trend_edit: bool = False
    pair_id: str = ""

    @property
    def heldout_edit(self) -> bool:
        return any(e in E.HELDOUT_EDITS for e in self.edit_types)

    @property
    def heldout_source(self) -> bool:
        return self.query.template.heldout_source or self.candidate.template.heldout_source


@dataclass
class CorpusPlan:
    """Everything the generator writes, before rendering."""

    synth: SynthConfig
    templates: list[Template]
    videos: list[Video]
    clips: list[Clip]
    pairs: list[Pair]
    policies: tuple[str, ...]
    sample_rate: int = 16_000
    heldout_sources: tuple[str, ...] = sources.HELDOUT_SOURCES

    def video_specs(self) -> list[VideoSpec]:
        s = self.synth
        return [
            VideoSpec(v.video_id, v.scenes, s.width, s.height, s.video_fps, self.sample_rate, v.has_audio, v.edits)
            for v in self.videos
        ]


def effective_synth(synth: SynthConfig, clips: int | None = None, days: int | None = None) -> SynthConfig:
    """``synth`` with ``clips``/``days`` overridden. When ``days`` changes, ``trend_day`` keeps
    its relative position (e.g. day 6 of 8 becomes day 3 of 4)."""
    update = synth.model_dump()
    if clips is not None:
        update["clips"] = clips
    if days is not None and days != synth.days:
        update["days"] = days
        update["trend_day"] = min(days - 1, max(1, round(synth.trend_day * days / synth.days)))
    return SynthConfig.model_validate(update)


def _us(dt: datetime) -> int:
    return int(round(dt.timestamp() * 1_000_000))


def _quantise(seconds: float, fps: float) -> float:
    return max(2, int(round(seconds * fps))) / fps


def _bright(rng: np.random.Generator) -> tuple[int, int, int]:
    """A saturated, bright colour of random hue."""
    r, g, b = colorsys.hsv_to_rgb(float(rng.uniform()), float(rng.uniform(0.65, 1.0)), 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


class _Planner:
    def __init__(self, seed: int, synth: SynthConfig, media: MediaConfig, policies: tuple[str, ...]) -> None:
        P.check_taxonomy(policies)
        self.seed = seed
        self.s = synth
        self.media = media
        self.policies = policies
        self.W, self.H, self.fps = synth.width, synth.height, synth.video_fps
        if self.W % 2 or self.H % 2:
            raise ValueError(f"synth width/height must be even, got {self.W}x{self.H}")
        if synth.min_seconds > synth.max_seconds:
            raise ValueError("synth.min_seconds must not exceed synth.max_seconds")
        self.start = datetime.fromisoformat(synth.start_date).replace(tzinfo=UTC)
        self.videos: list[Video] = []
        self.clips: list[Clip] = []
        self.pairs: list[Pair] = []

    # -- helpers ------------------------------------------------------------------------

    def rng(self, stream: int, index: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.seed & 0xFFFFFFFF, stream, index])

    def day_start_us(self, day: int) -> int:
        return _us(self.start + timedelta(days=day))

    def _new_video(self, scenes: tuple[Scene, ...], has_audio: bool, ts_us: int, **kw) -> Video:
        v = Video(len(self.videos), scenes, has_audio, ts_us, **kw)
        self.videos.append(v)
        return v

    def _new_clip(self, **kw) -> Clip:
        c = Clip(key=len(self.clips), **kw)
        self.clips.append(c)
        return c

    # -- templates ----------------------------------------------------------------------

    def plan_templates(self) -> list[Template]:
        n = max(10, round(self.s.clips / TEMPLATE_CLIPS))
        n_test = max(1, round(SPLIT_SHARES["test"] * n))
        n_val = max(1, round(SPLIT_SHARES["val"] * n))
        n_held = min(len(sources.HELDOUT_SOURCES), max(1, math.ceil(n_test / 2)))
        g = self.rng(_RNG_GLOBAL, 1)
        held = [str(x) for x in g.permutation(sources.HELDOUT_SOURCES)[:n_held]]
        pool = [s for s in sources.all_sources() if s not in sources.HELDOUT_SOURCES]
        others: list[str] = []
        while len(others) < n - n_held:
            others += [str(x) for x in g.permutation(pool)]
        others = others[: n - n_held]
        splits = ["test"] * (n_test - n_held) + ["val"] * n_val
        splits += ["train"] * (len(others) - len(splits))
        assigned = [(src, "test", True) for src in held]
        assigned += [(src, split, False) for src, split in zip(others, splits, strict=True)]
        order = g.permutation(len(assigned))  # template ids do not reveal the split
        return [self._template(k, *assigned[int(i)]) for k, i in enumerate(order)]

    def _template(self, k: int, source: str, split: str, heldout: bool) -> Template:
        rng = self.rng(_RNG_TEMPLATE, k)
        kind = sources.source_kind(source)
        zoom = (0.8, 1.0) if kind == "video" else (0.5, 0.95)
        z0 = float(rng.uniform(*zoom))
        z1 = float(np.clip(z0 + rng.uniform(-0.15, 0.15), *zoom))
        c0 = rng.uniform(0.3, 0.7, size=2)
        c1 = np.clip(c0 + rng.uniform(-0.2, 0.2, size=2), 0.2, 0.8)
        bg = Background(
            source=source,
            seed=int(rng.integers(0, 2**31)),
            start=(float(c0[0]), float(c0[1]), z0),
            end=(float(c1[0]), float(c1[1]), z1),
            period=float(rng.uniform(10.0, 24.0)),
            video_offset=float(rng.uniform(0.0, 5.0)),
            gains=tuple(float(x) for x in rng.uniform(0.85, 1.15, size=3)),  # type: ignore[arg-type]
            gamma=float(rng.uniform(0.8, 1.25)),
            saturation=float(rng.uniform(0.6, 1.4)),
            letterbox=int(rng.choice([0, 0, 0, 8, 10, 12])),
        )
        dark_box = rng.random() < 0.7
        box_alpha = int(rng.integers(110, 180))
        return Template(
            template_id=f"t{k:04d}",
            source=source,
            topic=SOURCE_TOPICS.get(source) or str(rng.choice(sorted(T.TOPICS))),
            background=bg,
            badge=Badge(_bright(rng), str(rng.choice(["tl", "tr", "bl", "br"])), int(rng.integers(10, 17))),
            text_anchor=str(rng.choice(["top", "middle", "bottom", "bottom"])),
            text_align=str(rng.choice(["center", "left"])),
            font_size=int(rng.integers(10, 13)),
            text_color=(255, 255, 255) if dark_box else (20, 20, 20),
            text_box=(0, 0, 0, box_alpha) if dark_box else (255, 255, 255, box_alpha + 50),
            split=split,
            heldout_source=heldout,
        )

    # -- content ------------------------------------------------------------------------

    def _duration(self, rng: np.random.Generator) -> float:
        return _quantise(float(rng.uniform(self.s.min_seconds, self.s.max_seconds)), self.fps)

    def _plain_sprites(self, rng: np.random.Generator) -> list[Sprite]:
        out = []
        for _ in range(int(rng.integers(1, 5))):
            size = int(rng.integers(10, 25))
            ang, speed = float(rng.uniform(0, 2 * np.pi)), float(rng.uniform(10, 45))
            out.append(
                Sprite(
                    shape=str(rng.choice(PLAIN_SHAPES)),
                    size=size,
                    color=_bright(rng),
                    x=float(rng.uniform(size, self.W - size)),
                    y=float(rng.uniform(size, self.H - size)),
                    vx=speed * math.cos(ang),
                    vy=speed * math.sin(ang),
                    seed=int(rng.integers(0, 2**31)),
                )
            )
        return out

    def _overlay(self, tpl: Template, text: str, span: tuple[float, float]) -> TextOverlay:
        lo, hi = E.TEXT_REGION
        max_w = int((hi - lo) * self.W) - 4
        size = tpl.font_size
        lines = wrap_text(text, size, max_w)
        while len(lines) > 3 and size > 8:
            size -= 1
            lines = wrap_text(text, size, max_w)
        w, h = text_box_size(lines, size)
        x_lo, x_hi = int(math.ceil(lo * self.W)), int(hi * self.W) - w
        y_lo, y_hi = int(math.ceil(lo * self.H)), int(hi * self.H) - h
        x = max(x_lo, (self.W - w) // 2) if tpl.text_align == "center" else x_lo
        y = {"top": y_lo, "middle": (self.H - h) // 2, "bottom": y_hi}[tpl.text_anchor]
        return TextOverlay(
            lines=lines,
            x=min(x, max(x_lo, x_hi)),
            y=max(0, min(max(y_lo, y), max(y_lo, y_hi))),
            font_size=size,
            color=tpl.text_color,
            box=tpl.text_box,
            t0=span[0],
            t1=span[1],
        )

    def _text(
        self,
        rng: np.random.Generator,
        tpl: Template,
        duration: float,
        patterns: Sequence[P.Pattern],
        has_audio: bool,
        span: tuple[float, float],
        text_fields: tuple[str, ...] = ("title", "ocr", "asr"),
        speech: bool | None = None,
    ) -> TextPart:
        """Benign title/caption/transcript, then the text evidence of ``patterns`` written into
        a random non-empty subset of its allowed fields (only ``text_fields``)."""
        title = T.title(rng, tpl.topic)
        caption = T.caption(rng, tpl.topic) if rng.random() < CAPTION_RATE else ""
        max_words = max(3, int((duration - 0.6) * 2.2))
        want_speech = (rng.random() < SPEECH_RATE) if speech is None else speech
        asr = T.transcript(rng, tpl.topic, max_words) if has_audio and want_speech else ""
        fields: dict[str, list[str]] = {"title": [], "ocr": [], "asr": []}
        tags: dict[str, set[str]] = {"title": set(), "ocr": set(), "asr": set()}
        for pat in patterns:
            for tag in sorted(t for t in pat.tags if P.EVIDENCE_MODALITY[t] == "text"):
                allowed = [f for f in P.TEXT_FIELDS[tag] if f in text_fields and (f != "asr" or has_audio)]
                chosen = rng.choice(allowed, size=int(rng.integers(1, len(allowed) + 1)), replace=False)
                phrase = P.evidence_phrase(tag, rng, tpl.topic, lookalike=pat.policy is None)
                for f in sorted(str(c) for c in chosen):
                    fields[f].append(phrase)
                    tags[f].add(tag)
            extra = P.benign_caption(pat, rng)
            if extra and not fields["ocr"]:
                caption = extra
        if fields["title"]:
            said = " | ".join(fields["title"])
            title = said if rng.random() < 0.5 else f"{title} | {said}"
        ocr_span = (0.0, duration)
        if fields["ocr"]:
            caption, ocr_span = " ".join(fields["ocr"]), span
        if fields["asr"]:
            said = " ".join(fields["asr"])
            asr = said if rng.random() < 0.5 or not asr else f"{asr} {said}"
        overlay = self._overlay(tpl, caption, ocr_span) if caption else None
        return TextPart(title, overlay, asr, {k: frozenset(v) for k, v in tags.items()})

    def _soundtrack(self, rng: np.random.Generator, speech: bool) -> list[Sound]:
        kinds = SOUNDTRACKS[int(rng.choice(len(SOUNDTRACKS), p=SOUNDTRACK_SHARES))]
        duck = 0.35 if speech else 1.0
        gains = {"melody": 0.7, "music": 0.8, "noise": 0.35}
        return [Sound(k, seed=int(rng.integers(0, 2**31)), gain=gains[k] * duck * float(rng.uniform(0.7, 1.1))) for k in kinds]

    def _audio(
        self, rng: np.random.Generator, patterns: Sequence[P.Pattern], asr: str, span: tuple[float, float]
    ) -> tuple[tuple[Sound, ...], frozenset[str]]:
        layers = self._soundtrack(rng, speech=bool(asr))
        if asr:
            voice = float(rng.uniform(95, 230))
            layers.append(Sound("speech", seed=int(rng.integers(0, 2**31)), gain=1.0, text=asr, pitch=voice))
        tags = sorted({t for p in patterns for t in p.tags if P.EVIDENCE_MODALITY[t] == "audio"})
        layers += [P.evidence_sound(t, rng, span) for t in tags]
        return tuple(layers), frozenset(tags)

    def content(
        self,
        rng: np.random.Generator,
        tpl: Template,
        duration: float,
        patterns: Sequence[P.Pattern],
        has_audio: bool,
        span: tuple[float, float] | None = None,
        text_fields: tuple[str, ...] = ("title", "ocr", "asr"),
        *,
        sprites: tuple[tuple[Sprite, ...], frozenset[str]] | None = None,
        phase: float | None = None,
        text: TextPart | None = None,
        sounds: tuple[tuple[Sound, ...], frozenset[str]] | None = None,
        speech: bool | None = None,
    ) -> Content:
        """A scene of template ``tpl`` showing ``patterns``' evidence during ``span``.

        Keyword overrides reuse parts of another clip (copies and near-duplicates):
        ``sprites`` / ``sounds`` as (elements, evidence tags), ``text`` verbatim.
        """
        if any(p.needs_audio for p in patterns) and not has_audio:
            raise ValueError("a pattern with audio evidence needs a video with audio")
        span = span or (0.0, duration)
        if phase is None:
            phase = float(rng.uniform(0.0, 0.3 * tpl.background.period))
        if sprites is None:
            vis = sorted({t for p in patterns for t in p.tags if P.EVIDENCE_MODALITY[t] == "visual"})
            ev = [P.evidence_sprite(t, rng, self.W, self.H, span) for t in vis]
            sprites = (tuple(self._plain_sprites(rng) + ev), frozenset(vis))
        if text is None:
            text = self._text(rng, tpl, duration, patterns, has_audio, span, text_fields, speech)
        if not has_audio:
            sounds = ((), frozenset())
        elif sounds is None:
            sounds = self._audio(rng, patterns, text.asr, span)
        scene = Scene(
            duration=duration,
            background=tpl.background,
            phase=phase,
            badge=tpl.badge,
            sprites=sprites[0],
            overlays=(text.overlay,) if text.overlay is not None else (),
            sounds=sounds[0],
        )
        return Content(scene, text, sprites[1], sounds[1], span)

    # -- base uploads -------------------------------------------------------------------

    def plan_uploads(self, templates: list[Template]) -> list[Clip]:
        s, n = self.s, self.s.clips
        g = self.rng(_RNG_GLOBAL, 2)
        day = [(i * s.days) // n for i in range(n)]
        pre = [i for i in range(n) if day[i] < s.trend_day]
        post = [i for i in range(n) if day[i] >= s.trend_day]
        # balanced template assignment: pre-trend over all templates, later ones without held-out media
        tpl_of: dict[int, Template] = {}
        for idx, pool in ((pre, templates), (post, [t for t in templates if not t.heldout_source])):
            cycle: list[Template] = []
            while len(cycle) < len(idx):
                cycle += [pool[int(j)] for j in g.permutation(len(pool))]
            tpl_of.update(zip(idx, cycle, strict=False))
        # which clips show which patterns (exact counts, evenly spread over policies/look-alikes)
        patterns: dict[int, list[P.Pattern]] = defaultdict(list)
        n_trend = round(s.trend_rate * len(post))
        for i in g.choice(post, size=n_trend, replace=False) if post else []:
            patterns[int(i)].append(P.TREND)
        free = [i for i in range(n) if i not in patterns]
        n_viol = min(len(free), round(s.violation_rate * n))
        viol = [int(i) for i in g.choice(free, size=n_viol, replace=False)]
        order = [str(p) for p in g.permutation(self.policies)]
        for k, i in enumerate(viol):
            pol = order[k % len(order)]
            patterns[i].append(P.VIOLATIONS[pol])
            if g.random() < 0.15:  # a few clips violate two policies
                other = [p for p in self.policies if p != pol]
                patterns[i].append(P.VIOLATIONS[str(g.choice(other))])
        free = [i for i in range(n) if i not in patterns]
        n_look = min(len(free), round(s.lookalike_rate * n))
        looks = [P.LOOKALIKES[int(j)] for j in g.permutation(len(P.LOOKALIKES))]
        for k, i in enumerate(g.choice(free, size=n_look, replace=False)):
            patterns[int(i)].append(looks[k % len(looks)])
        silent_ok = [i for i in range(n) if not any(p.needs_audio for p in patterns.get(i, ()))]
        n_silent = min(len(silent_ok), max(1, round(NO_AUDIO_RATE * n)))
        silent = {int(i) for i in g.choice(silent_ok, size=n_silent, replace=False)}

        out = []
        for i in range(n):
            rng = self.rng(_RNG_CLIP, i)
            tpl = tpl_of[i]
            duration = self._duration(rng)
            content = self.content(rng, tpl, duration, patterns.get(i, []), has_audio=i not in silent)
            ts = self.day_start_us(day[i]) + int(rng.uniform(0.0, 0.8) * 86_400e6)
            split = "traffic" if day[i] >= s.trend_day else tpl.split
            out.append(self._upload_clip(content, tpl, day[i], ts, split))
        return out

    def _upload_clip(self, content: Content, tpl: Template, day: int, ts: int, split: str, edits: tuple[Edit, ...] = ()) -> Clip:
        video = self._new_video((content.scene,), bool(content.scene.sounds), ts, edits=edits)
        tags = content.tags
        return self._new_clip(
            video=video,
            start_s=0.0,
            end_s=content.scene.duration,
            title=content.text.title,
            ocr=content.text.ocr,
            asr=content.text.asr,
            tags=tags,
            ts_us=ts,
            source=UPLOAD,
            split=split,
            template=tpl,
            day=day,
            trend="spiral" in tags,
            content=content,
        )

    # -- livestreams --------------------------------------------------------------------

    def plan_streams(self, templates: list[Template]) -> None:
        s = self.s
        if s.streams == 0:
            return
        days = [round(k * (s.days - 1) / max(1, s.streams - 1)) for k in range(s.streams)]
        pre_splits = ("train", "test", "val")  # pre-trend streams, in order (then train)
        n_pre = 0
        for k, day in enumerate(days):
            rng = self.rng(_RNG_STREAM, k)
            if day >= s.trend_day:
                split = "traffic"
                pool = [t for t in templates if not t.heldout_source]
            else:
                split = pre_splits[n_pre] if n_pre < len(pre_splits) else "train"
                n_pre += 1
                pool = [t for t in templates if t.split == split]
            segments: list[_Segment] = []
            t = 0.0
            while t < s.stream_seconds - 1e-6:
                left = s.stream_seconds - t
                length = min(left, float(rng.uniform(*STREAM_SEGMENT_S)))
                if left - length < 5.0:
                    length = left
                length = _quantise(length, self.fps)
                tpl = pool[int(rng.integers(len(pool)))]
                r = rng.random()
                if split == "traffic" and r < s.trend_rate:
                    pats = [P.TREND]
                elif r < STREAM_VIOLATION_RATE:
                    pats = [P.VIOLATIONS[str(rng.choice(self.policies))]]
                elif r < STREAM_VIOLATION_RATE + STREAM_LOOKALIKE_RATE:
                    pats = [P.LOOKALIKES[int(rng.integers(len(P.LOOKALIKES)))]]
                else:
                    pats = []
                ev_len = float(rng.uniform(max(min(length, 5.0), 0.4 * length), length))
                a = float(rng.uniform(0.0, length - ev_len))
                content = self.content(rng, tpl, length, pats, True, (a, a + ev_len), text_fields=("ocr",))
                segments.append(_Segment(content, t, tpl))
                t += length
            duration = sum(seg.content.scene.duration for seg in segments)
            start_us = self.day_start_us(day) + int(rng.uniform(0.05, 0.95 - duration / 86_400) * 86_400e6)
            video = self._new_video(tuple(seg.content.scene for seg in segments), True, start_us, stream=True)
            title = T.stream_title(rng, segments[0].template.topic)
            m = self.media
            for ws, we in plan_windows(duration, m.clip_seconds, m.clip_overlap_seconds, m.min_clip_seconds):
                self._window_clip(video, segments, ws, we, title, start_us, day, split)

    def _window_clip(
        self,
        video: Video,
        segments: list[_Segment],
        ws: float,
        we: float,
        title: str,
        start_us: int,
        day: int,
        split: str,
    ) -> None:
        """The clip row of window ``[ws, we)`` of a stream: the evidence, captions and words
        it overlaps; template = the segment it overlaps most."""

        def overlap(a: float, b: float) -> float:
            return max(0.0, min(b, we) - max(a, ws))

        tags: set[str] = set()
        ocr: list[str] = []
        words: list[str] = []
        main = max(segments, key=lambda seg: overlap(seg.offset, seg.offset + seg.content.scene.duration))
        for seg in segments:
            c, off = seg.content, seg.offset
            if overlap(off + c.span[0], off + c.span[1]) >= WINDOW_MIN_OVERLAP_S:
                tags |= c.visual_tags | c.audio_tags
            for o in c.scene.overlays:
                if overlap(off + o.t0, off + min(o.t1, c.scene.duration)) >= WINDOW_MIN_OVERLAP_S:
                    ocr.append(o.text)
                    tags |= c.text.tags["ocr"]
            for snd in c.scene.sounds:
                if snd.kind == "speech":
                    for w, wa, wb in speech_timeline(snd.text, snd.seed, c.scene.duration):
                        if ws <= off + (wa + wb) / 2 < we:
                            words.append(w)
        self._new_clip(
            video=video,
            start_s=float(ws),
            end_s=float(we),
            title=title,
            ocr=" ".join(ocr),
            asr=" ".join(words),
            tags=frozenset(tags),
            ts_us=start_us + int(round(we * 1e6)),
            source=LIVESTREAM,
            split=split,
            template=main.template,
            day=day,
            trend="spiral" in tags,
        )

    # -- RCI pairs ----------------------------------------------------------------------

    def _copy_ts(self, rng: np.random.Generator, q: Clip) -> int:
        day_end = self.day_start_us(q.day + 1) - 1_000_000
        return min(day_end, q.ts_us + int(rng.uniform(600, 4 * 3600) * 1e6))

    def _label_ts(self, rng: np.random.Generator, q: Clip, c: Clip) -> int:
        return max(q.ts_us, c.ts_us) + int(rng.uniform(300, 3 * 3600) * 1e6)

    def _visual_copy(self, rng: np.random.Generator, q: Clip, special: str | None) -> tuple[Clip, tuple[str, ...]]:
        """The query edited by 1–3 ops, one of them ``special`` (a held-out or trend edit)
        when given; the re-uploader writes a new title."""
        content = _content_of(q)
        k = int(rng.integers(1, 4))
        ops = [str(o) for o in rng.choice(E.TRAIN_EDITS, size=k, replace=False)]
        if special is not None:
            ops[int(rng.integers(k))] = special
        duration = content.scene.duration
        edits, overlays = [], [q.ocr] if q.ocr else []
        for op in ops:
            watermark = T.repost_tag(rng) if op == "overlay_text" else ""
            edits.append(Edit(op, E.sample_params(op, rng, self.W, self.H, duration, watermark)))
            if watermark:
                overlays.append(" ".join(edits[-1].params["lines"]))
        edits += self._retime(rng, _edited_duration(duration, self.fps, edits))
        replaced = q.video.has_audio and rng.random() < REPLACE_AUDIO_SHARE
        if replaced:
            music = E.sample_params("replace_audio", rng, self.W, self.H, duration)
            edits.append(Edit("replace_audio", music))
        keep_audio = q.video.has_audio and not replaced
        tags = content.visual_tags | content.text.tags["ocr"]
        if keep_audio:
            tags |= content.audio_tags | content.text.tags["asr"]
        ts = self._copy_ts(rng, q)
        video = self._new_video(q.video.scenes, q.video.has_audio, ts, edits=tuple(edits))
        clip = self._new_clip(
            video=video,
            start_s=0.0,
            end_s=_edited_duration(duration, self.fps, edits),
            title=T.title(rng, q.template.topic),
            ocr=" ".join(overlays),
            asr=q.asr if keep_audio else "",
            tags=frozenset(tags),
            ts_us=ts,
            source=UPLOAD,
            split=q.split,
            template=q.template,
            day=q.day,
            trend=special in E.TREND_EDITS or "spiral" in tags,
        )
        return clip, tuple(e.op for e in edits)

    def _retime(self, rng: np.random.Generator, duration: float) -> list[Edit]:
        """Time edits (a time-crop and/or a speed change) that give a copy of a ``duration``-s
        video a new duration drawn like any upload's, independent of the original's: a copy's
        length must say nothing about whether it is one (the shortcut a duration-difference
        scorer would read)."""
        target = self._duration(rng)
        edits: list[Edit] = []
        if target < duration:  # keep at least half of the video, then speed it up
            keep = max(0.5 * duration, target)
            cut = duration - keep
            if cut >= 1.0 / self.fps:
                head = round(float(rng.uniform(0.0, cut)), 1)
                edits.append(Edit("trim", {"head": head, "tail": round(cut - head, 1)}))
                duration = _edited_duration(duration, self.fps, edits)
        factor = duration / target
        if abs(factor - 1.0) * target * self.fps >= 1.0:  # at least one frame's difference
            edits.append(Edit("speed", {"factor": float(min(max(factor, 0.4), 2.5))}))
        return edits

    def _audio_copy(self, rng: np.random.Generator, q: Clip) -> tuple[Clip, tuple[str, ...]]:
        """Another clip of the template (new visuals and text) reusing the query's soundtrack."""
        qc = _content_of(q)
        soundtrack = (qc.scene.sounds, qc.audio_tags)
        content = self.content(rng, q.template, self._duration(rng), [], True, sounds=soundtrack, speech=False)
        edits = []
        if rng.random() < 0.6:
            edits.append(Edit("audio_shift", E.sample_params("audio_shift", rng, self.W, self.H, 0.0)))
        if rng.random() < 0.6:
            edits.append(Edit("volume", E.sample_params("volume", rng, self.W, self.H, 0.0)))
        clip = self._upload_clip(content, q.template, q.day, self._copy_ts(rng, q), q.split, tuple(edits))
        return clip, tuple(e.op for e in edits)

    def _text_copy(self, rng: np.random.Generator, q: Clip) -> Clip:
        """Another clip of the template (new visuals and soundtrack) with the query's title,
        caption and transcript (spoken by another voice)."""
        qc = _content_of(q)
        has_audio = q.video.has_audio or rng.random() < 0.5
        duration = self._duration(rng)
        text = qc.text
        if text.overlay is not None:  # the caption is shown, whatever the copy's length
            text = replace(text, overlay=replace(text.overlay, t0=0.0, t1=math.inf))
        content = self.content(rng, q.template, duration, [], has_audio, text=text)
        return self._upload_clip(content, q.template, q.day, self._copy_ts(rng, q), q.split)

    def _near_duplicate(self, rng: np.random.Generator, q: Clip) -> Clip:
        """Same template, same moving objects and camera path as the query, but its own title,
        caption, transcript and soundtrack: a visual hash calls it a copy; it is not."""
        qc = _content_of(q)
        content = self.content(
            rng,
            q.template,
            qc.scene.duration,
            [],
            q.video.has_audio or rng.random() < 0.5,
            sprites=(qc.scene.sprites, qc.visual_tags),
            phase=qc.scene.phase,
        )
        if content.text.ocr == qc.text.ocr and qc.text.ocr:  # the caption must differ
            content = replace(content, scene=replace(content.scene, overlays=()), text=replace(content.text, overlay=None))
        return self._upload_clip(content, q.template, q.day, self._copy_ts(rng, q), q.split)

    def plan_pairs(self, base: list[Clip], templates: list[Template]) -> None:
        s = self.s
        g = self.rng(_RNG_GLOBAL, 3)
        n_pairs = max(1, round(len(base) * s.pairs_per_clip))
        n_pos = min(n_pairs, max(3, round(n_pairs * s.positive_rate)))
        n_vis = max(1, round(n_pos * REASON_SHARES["visual"]))
        n_aud = max(1, round(n_pos * REASON_SHARES["audio"]))
        n_txt = max(1, n_pos - n_vis - n_aud)
        # visual positives stratified over the splits (each split gets some when possible)
        by_split: dict[str, list[Clip]] = defaultdict(list)
        for c in base:
            by_split[c.split].append(c)
        split_names = sorted(by_split)
        quota = {sp: 0 for sp in split_names}
        for sp in split_names if n_vis >= len(split_names) else []:
            quota[sp] = 1
        for _ in range(n_vis - sum(quota.values())):
            weights = np.array([len(by_split[sp]) / (quota[sp] + 1) for sp in split_names])
            quota[split_names[int(np.argmax(weights))]] += 1
        used: set[int] = set()
        positives: list[tuple[Clip, str]] = []
        for sp in split_names:
            picks = g.permutation(len(by_split[sp]))[: quota[sp]]
            for j in picks:
                positives.append((by_split[sp][int(j)], "visual"))
                used.add(by_split[sp][int(j)].key)
        for reason, count, ok in (
            ("audio", n_aud, lambda c: c.video.has_audio and not c.asr),
            ("text", n_txt, lambda c: bool(c.ocr or c.asr)),
        ):
            eligible = [c for c in base if c.key not in used and ok(c)]
            for j in g.permutation(len(eligible))[:count]:
                positives.append((eligible[int(j)], reason))
                used.add(eligible[int(j)].key)

        extra_pos = self._extra_test_positives(g, by_split.get("test", []), positives)
        positives += extra_pos
        n_extra_neg = round(len(extra_pos) * (1 - s.positive_rate) / s.positive_rate)

        seen: set[tuple[int, int]] = set()
        heldout_ops = [str(op) for op in g.permutation(E.HELDOUT_EDITS)]
        heldout_done = trend_done = 0
        for k, (q, reason) in enumerate(positives):
            rng = self.rng(_RNG_COPY, k)
            edit_types: tuple[str, ...] = ()
            trend_edit = False
            if reason == "visual":
                # the first test (traffic) copy gets a held-out (trend) edit, later ones by chance
                special = None
                if q.split == "test" and (heldout_done == 0 or rng.random() < HELDOUT_EDIT_SHARE):
                    special = heldout_ops[heldout_done % len(heldout_ops)]
                    heldout_done += 1
                elif q.split == "traffic" and (trend_done == 0 or rng.random() < TREND_EDIT_SHARE):
                    special = E.TREND_EDITS[0]
                    trend_done += 1
                trend_edit = special in E.TREND_EDITS
                cand, edit_types = self._visual_copy(rng, q, special)
            elif reason == "audio":
                cand, edit_types = self._audio_copy(rng, q)
            else:
                cand = self._text_copy(rng, q)
            seen.add((q.key, cand.key))
            ts = self._label_ts(rng, q, cand)
            self.pairs.append(Pair(q, cand, 1, reason, ts, edit_types, False, trend_edit))

        # negatives: every base clip is a query about pairs_per_clip times in all
        slots = [c for c in base for _ in range(int(s.pairs_per_clip))]
        rest = n_pairs - len(slots)
        if rest > 0:
            slots += [base[int(j)] for j in g.choice(len(base), size=rest, replace=rest > len(base))]
        test_base = by_split.get("test", [])
        if n_extra_neg and test_base:
            slots += [test_base[int(j)] for j in g.choice(len(test_base), size=n_extra_neg)]
        slots = [slots[int(j)] for j in g.permutation(len(slots))]
        for q, _ in positives:
            if q in slots:
                slots.remove(q)
        slots = slots[: n_pairs + n_extra_neg + len(extra_pos) - len(positives)]
        n_hard = round(HARD_NEGATIVE_SHARE * len(slots))
        groups: dict[tuple[str, str], list[Clip]] = defaultdict(list)
        for c in base:
            groups[(c.template.template_id, c.split)].append(c)
        near = self._nearest_templates(templates)
        for k, q in enumerate(slots):
            rng = self.rng(_RNG_PAIR, k)
            hard = k < n_hard
            if hard:
                found = self._hard_candidate(rng, q, groups, seen)
            else:
                found = self._easy_candidate(rng, q, by_split, near, seen)
            if found is None:  # a near-visual duplicate (by design, or when no partner is left)
                found, hard = self._near_duplicate(rng, q), True
            seen.add((q.key, found.key))
            self.pairs.append(Pair(q, found, 0, "none", self._label_ts(rng, q, found), (), hard, False))

    def _extra_test_positives(
        self, g: np.random.Generator, test_base: list[Clip], positives: list[tuple[Clip, str]]
    ) -> list[tuple[Clip, str]]:
        """More copies of test-split clips (new copy videos; a clip may be copied several
        times, with other edits) until the test split holds ``synth.min_test_copies``
        positives, at most three more per test clip; reasons in :data:`REASON_SHARES`."""
        have = sum(1 for q, _ in positives if q.split == "test")
        want = min(self.s.min_test_copies - have, 3 * len(test_base))
        if want <= 0:
            return []
        eligible = {
            "visual": test_base,
            "audio": [c for c in test_base if c.video.has_audio and not c.asr],
            "text": [c for c in test_base if c.ocr or c.asr],
        }
        reasons = [r for r in REASON_SHARES if eligible[r]]
        shares = np.array([REASON_SHARES[r] for r in reasons])
        out = []
        for _ in range(want):
            reason = reasons[int(g.choice(len(reasons), p=shares / shares.sum()))]
            pool = eligible[reason]
            out.append((pool[int(g.integers(len(pool)))], reason))
        return out

    def _hard_candidate(
        self,
        rng: np.random.Generator,
        q: Clip,
        groups: dict[tuple[str, str], list[Clip]],
        seen: set[tuple[int, int]],
    ) -> Clip | None:
        """Another clip of the query's template and split; None asks for a near-duplicate."""
        if rng.random() < NEAR_DUP_SHARE:
            return None
        group = groups[(q.template.template_id, q.split)]
        pool = [c for c in group if c is not q and (q.key, c.key) not in seen]
        return pool[int(rng.integers(len(pool)))] if pool else None

    def _easy_candidate(
        self,
        rng: np.random.Generator,
        q: Clip,
        by_split: dict[str, list[Clip]],
        near: dict[str, list[str]],
        seen: set[tuple[int, int]],
    ) -> Clip | None:
        """A clip of another template in the query's split (half the time of a visually close one)."""
        pool = [c for c in by_split[q.split] if c.template is not q.template and (q.key, c.key) not in seen]
        if not pool:
            return None
        if rng.random() < 0.5:  # a clip of one of the visually closest other templates
            close = set(near[q.template.template_id])
            closest = [c for c in pool if c.template.template_id in close]
            pool = closest or pool
        return pool[int(rng.integers(len(pool)))]

    def _nearest_templates(self, templates: list[Template], k: int = 3) -> dict[str, list[str]]:
        """For each template, the ``k`` other templates whose first frames look most alike
        (L2 on 8x6 thumbnails of the graded background): the easy negatives a
        visual-similarity retriever would surface."""
        thumbs = []
        for t in templates:
            frame = background_frame(t.background, 0.0, (self.W, self.H))
            h, w = self.H // 6, self.W // 8
            thumbs.append(frame[: 6 * h, : 8 * w].reshape(6, h, 8, w, 3).mean(axis=(1, 3)).ravel() / 255.0)
        x = np.stack(thumbs)
        d = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
        np.fill_diagonal(d, np.inf)
        ids = [t.template_id for t in templates]
        return {tid: [ids[int(j)] for j in np.argsort(d[i])[:k]] for i, tid in enumerate(ids)}

    # -- ids ----------------------------------------------------------------------------

    def assign_ids(self) -> None:
        """Ids in publication order: videos ``v…`` (uploads) / ``s…`` (streams), clips ``c…``,
        pairs ``p…``; ties broken by creation order, so ids are stable for a seed."""
        uploads = sorted((v for v in self.videos if not v.stream), key=lambda v: (v.ts_us, v.key))
        for i, v in enumerate(uploads):
            v.video_id = f"v{i:06d}"
        for i, v in enumerate(sorted((v for v in self.videos if v.stream), key=lambda v: (v.ts_us, v.key))):
            v.video_id = f"s{i:04d}"
        self.videos.sort(key=lambda v: v.video_id)
        self.clips.sort(key=lambda c: (c.ts_us, c.key))
        for i, c in enumerate(self.clips):
            c.clip_id = f"c{i:06d}"
        self.pairs.sort(key=lambda p: (p.ts_us, p.query.clip_id, p.candidate.clip_id))
        for i, p in enumerate(self.pairs):
            p.pair_id = f"p{i:06d}"


def _content_of(q: Clip) -> Content:
    if q.content is None:
        raise ValueError(f"clip {q.key} is a livestream window: copies are made of short uploads only")
    return q.content


def _edited_duration(duration: float, fps: float, edits: Sequence[Edit]) -> float:
    """Duration after the time-changing edits (``speed``, ``trim``), exactly as rendered."""
    n = int(round(duration * fps))
    for e in edits:
        if e.op == "speed":
            n = max(2, int(round(n / e.params["factor"])))
        elif e.op == "trim":
            n = n - int(round(e.params["head"] * fps)) - int(round(e.params["tail"] * fps))
    return n / fps


def plan_corpus(
    seed: int, synth: SynthConfig, media: MediaConfig, policies: tuple[str, ...], sample_rate: int = 16_000
) -> CorpusPlan:
    """Sample the whole corpus for ``seed`` (deterministic; nothing is rendered)."""
    pl = _Planner(seed, synth, media, policies)
    templates = pl.plan_templates()
    base = pl.plan_uploads(templates)
    pl.plan_streams(templates)
    pl.plan_pairs(base, templates)
    pl.assign_ids()
    return CorpusPlan(synth, templates, pl.videos, pl.clips, pl.pairs, policies, sample_rate=sample_rate)
