"""Text of the corpus: titles, on-screen captions, transcripts, and the policy phrases.

Benign text comes from small per-topic grammars (a few hundred words in all) so that
titles of different clips rarely coincide but share vocabulary, as real uploads do. The
policy phrases are built so that the *only* difference between a violation and its
benign look-alike is the evidence itself:

* hate speech uses an invented lexicon of nonsense tokens (:data:`SLUR_LEXICON`; never
  real slurs) inside sentence frames whose benign versions (:func:`benign_vocab_phrase`)
  use the same frames with ordinary nouns;
* scam text is giveaway/crypto wording (:func:`giveaway_phrase`), which is benign on its
  own (contests happen) and only a violation together with an on-screen QR code;
* the trend hashtag :data:`TREND_HASHTAG` appears only from the trend day.

Every generator takes a numpy ``Generator`` and returns plain ``str``.
"""

from __future__ import annotations

import numpy as np

TOPICS: dict[str, dict[str, tuple[str, ...]]] = {
    "cooking": {
        "noun": ("pasta", "ramen", "pancakes", "curry", "sourdough", "tacos", "salad", "dumplings", "coffee"),
        "verb": ("cooking", "baking", "trying", "making", "tasting", "plating"),
        "place": ("kitchen", "food truck", "night market", "cafe", "farmhouse"),
        "tag": ("#foodie", "#recipe", "#homecooking", "#yum"),
    },
    "pets": {
        "noun": ("cat", "kitten", "puppy", "parrot", "hamster", "rabbit", "goldfish", "horse"),
        "verb": ("chasing", "ignoring", "napping with", "discovering", "playing with", "stealing"),
        "place": ("living room", "backyard", "vet", "sofa", "garden"),
        "tag": ("#cats", "#petsoftiktak", "#cute", "#dogsofclip"),
    },
    "travel": {
        "noun": ("mountains", "old town", "beach", "train ride", "harbour", "night skyline", "lighthouse"),
        "verb": ("exploring", "hiking", "visiting", "walking through", "filming", "getting lost in"),
        "place": ("old harbour", "alps", "coast", "city centre", "desert", "tiny island"),
        "tag": ("#travel", "#wanderlust", "#roadtrip", "#vlog"),
    },
    "sports": {
        "noun": ("bike jump", "skate trick", "free kick", "marathon", "climbing route", "backflip", "dunk"),
        "verb": ("landing", "training", "practising", "nailing", "attempting", "timing"),
        "place": ("skatepark", "stadium", "gym", "trail", "court"),
        "tag": ("#sports", "#training", "#mtb", "#skate"),
    },
    "science": {
        "noun": ("telescope", "moon", "galaxy", "microscope", "rocket launch", "cell sample", "eclipse"),
        "verb": ("observing", "explaining", "measuring", "photographing", "building", "testing"),
        "place": ("observatory", "lab", "backyard", "classroom", "launch pad"),
        "tag": ("#science", "#space", "#astronomy", "#stem"),
    },
    "diy": {
        "noun": ("shelf", "birdhouse", "lamp", "workbench", "planter", "clock", "coin collection"),
        "verb": ("building", "fixing", "painting", "restoring", "sanding", "organising"),
        "place": ("garage", "workshop", "balcony", "shed", "studio"),
        "tag": ("#diy", "#woodworking", "#maker", "#howto"),
    },
    "music": {
        "noun": ("guitar riff", "drum fill", "piano cover", "synth loop", "choir", "bass line"),
        "verb": ("playing", "recording", "covering", "jamming", "mixing", "learning"),
        "place": ("studio", "bedroom", "street corner", "rehearsal room", "festival"),
        "tag": ("#music", "#cover", "#musician", "#beats"),
    },
    "gaming": {
        "noun": ("speedrun", "boss fight", "new map", "ranked match", "mod", "retro console"),
        "verb": ("playing", "beating", "streaming", "testing", "reviewing", "grinding"),
        "place": ("setup", "arcade", "lan party", "couch", "tournament"),
        "tag": ("#gaming", "#gamer", "#speedrun", "#retro"),
    },
}

ADJ = (
    "amazing",
    "quick",
    "slow",
    "first",
    "last",
    "tiny",
    "huge",
    "sunny",
    "rainy",
    "late night",
    "weekend",
    "cozy",
    "chaotic",
    "perfect",
    "honest",
    "simple",
    "wild",
    "calm",
    "easy",
    "secret",
)
TITLE_FRAMES = (
    "{adj} {noun} in the {place}",
    "{verb} {noun} at the {place} {tag}",
    "my {adj} {noun} day",
    "{verb} the {noun} (part {n})",
    "POV: {verb} {noun} {tag}",
    "{adj} {noun} vlog #{n}",
    "we tried {verb} {noun} at the {place}",
    "day {n} of {verb} {noun}",
    "is this the most {adj} {noun}? {tag}",
    "{noun} {verb} compilation {tag}",
)
CAPTION_FRAMES = (
    "wait for it",
    "part {n}",
    "day {n}",
    "{adj} {noun}",
    "best {noun} ever",
    "follow for part {n}",
    "{noun} at the {place}",
    "{verb} {noun}",
    "no way",
    "watch till the end",
)
SPEECH_OPENERS = ("okay so", "hey everyone", "alright", "right", "look", "honestly")
SPEECH_FRAMES = (
    "today we are {verb} {noun} at the {place}",
    "this {noun} is so {adj}",
    "I have been {verb} this {noun} all week",
    "let me show you the {adj} {noun}",
    "we are at the {place} and it is {adj}",
    "tell me what you think about the {noun}",
)
STREAM_FRAMES = (
    "LIVE: {verb} {noun} with chat",
    "live from the {place}",
    "24/7 {noun} stream {tag}",
    "{adj} {noun} live session",
)

SLUR_LEXICON: tuple[str, ...] = ("vorgal", "skreth", "glimmox", "draveen", "thrunkel", "zebbitz")
"""Invented nonsense tokens standing in for slurs (the hate-speech evidence)."""

HATE_FRAMES = (
    "get the {x} out of our {place}",
    "no {x} allowed at the {place}",
    "typical {x} behaviour again",
    "all {x} should stay away from the {place}",
    "{x} like them ruin every {noun}",
    "never trust a {x} with your {noun}",
)
BENIGN_FILLERS = ("kids", "dogs", "tourists", "pigeons", "neighbours", "cats", "beginners", "fans")
"""Ordinary nouns that fill the hate frames in the benign look-alikes."""

GIVEAWAY_FRAMES = (
    "FREE crypto giveaway send 0.1 BTC get 2 back",
    "giveaway: double your coins today only",
    "claim your free tokens now limited giveaway",
    "crypto giveaway winners get 5000 USDT",
    "official giveaway send ETH receive double",
)
"""Giveaway/crypto wording: half of the scam pattern (benign without a QR code)."""

CONTEST_FRAMES = (
    "giveaway winners announced at the {place}",
    "contest giveaway: best {noun} wins a prize",
    "free {noun} giveaway for our followers",
    "weekend giveaway at the {place}",
)
"""Benign giveaway wording (contests) used by look-alikes that show no QR code."""

QR_CAPTIONS = ("scan for the menu", "scan to see the recipe", "scan for tickets", "scan for the playlist")
"""Benign captions next to benign QR codes (menus, tickets, ads)."""

TREND_HASHTAG = "#spinzchallenge"
TREND_FRAMES = ("try the {h}", "{h} day {n}", "who can do the {h}", "spin to win {h}")

REPOST_TAGS = ("@clipdump", "@repost.daily", "@viralvault", "via @bestof", "credit @", "@funnyclips")


def _pick(rng: np.random.Generator, seq):
    return seq[int(rng.integers(len(seq)))]


def _fill(rng: np.random.Generator, frame: str, topic: str, **extra: str) -> str:
    vocab = TOPICS[topic]
    return frame.format(
        adj=_pick(rng, ADJ),
        noun=_pick(rng, vocab["noun"]),
        verb=_pick(rng, vocab["verb"]),
        place=_pick(rng, vocab["place"]),
        tag=_pick(rng, vocab["tag"]),
        n=int(rng.integers(1, 40)),
        **extra,
    )


def title(rng: np.random.Generator, topic: str) -> str:
    return _fill(rng, _pick(rng, TITLE_FRAMES), topic)


def caption(rng: np.random.Generator, topic: str) -> str:
    """A short on-screen caption."""
    return _fill(rng, _pick(rng, CAPTION_FRAMES), topic)


def transcript(rng: np.random.Generator, topic: str, max_words: int) -> str:
    """One or two spoken sentences; the second only if the total stays within ``max_words``."""
    first = f"{_pick(rng, SPEECH_OPENERS)} {_fill(rng, _pick(rng, SPEECH_FRAMES), topic)}"
    if rng.random() < 0.5:
        second = _fill(rng, _pick(rng, SPEECH_FRAMES), topic)
        if len(first.split()) + len(second.split()) <= max_words:
            return f"{first}. {second}"
    return first


def stream_title(rng: np.random.Generator, topic: str) -> str:
    return _fill(rng, _pick(rng, STREAM_FRAMES), topic)


def hate_phrase(rng: np.random.Generator, topic: str) -> str:
    """A hateful sentence built around a token of :data:`SLUR_LEXICON`."""
    return _fill(rng, _pick(rng, HATE_FRAMES), topic, x=_pick(rng, SLUR_LEXICON))


def benign_vocab_phrase(rng: np.random.Generator, topic: str) -> str:
    """The same sentence frames as :func:`hate_phrase` with ordinary nouns (a look-alike)."""
    return _fill(rng, _pick(rng, HATE_FRAMES), topic, x=_pick(rng, BENIGN_FILLERS))


def giveaway_phrase(rng: np.random.Generator) -> str:
    return _pick(rng, GIVEAWAY_FRAMES)


def contest_phrase(rng: np.random.Generator, topic: str) -> str:
    return _fill(rng, _pick(rng, CONTEST_FRAMES), topic)


def qr_caption(rng: np.random.Generator) -> str:
    return _pick(rng, QR_CAPTIONS)


def trend_phrase(rng: np.random.Generator) -> str:
    return _pick(rng, TREND_FRAMES).format(h=TREND_HASHTAG, n=int(rng.integers(1, 9)))


def repost_tag(rng: np.random.Generator) -> str:
    """A re-uploader's watermark (the ``overlay_text`` edit)."""
    return f"{_pick(rng, REPOST_TAGS)}{int(rng.integers(1, 99))}"


def contains_slur(text: str) -> bool:
    low = text.lower()
    return any(tok in low for tok in SLUR_LEXICON)
