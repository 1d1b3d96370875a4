"""A synthetic per-clip traffic generator for the drift tests.

Gaussian-mixture embeddings (one cluster per topic, unit-normalised as the encoders'
are), topic titles with one topic hashtag, captions, transcripts, loudness and a
student score. Every day draws its own topic mix (a Dirichlet around the base mix), so
days differ by more than sampling noise, as real traffic does. On a shifted day a
``trend_rate`` share of clips shows a new trend: a new visual cluster, a trend hashtag
phrase in the title, a louder sound, and a higher score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

TOPICS = {
    "cooking": ("pasta", "ramen", "curry", "tacos", "#foodie"),
    "pets": ("cat", "puppy", "parrot", "rabbit", "#cute"),
    "travel": ("beach", "mountains", "harbour", "old town", "#travel"),
    "sports": ("skate trick", "free kick", "backflip", "dunk", "#sports"),
    "science": ("telescope", "galaxy", "eclipse", "rocket launch", "#science"),
    "music": ("guitar riff", "drum fill", "piano cover", "synth loop", "#music"),
}
VERBS = ("trying", "filming", "watching", "making", "showing", "testing")
FILLER = ("today", "again", "with friends", "at night", "for the first time", "part two")
TREND_HASHTAG = "#spinzchallenge"


@dataclass(frozen=True)
class World:
    """Fixed cluster centres (visual, text) of the topics and of the trend."""

    visual: np.ndarray
    text: np.ndarray
    trend_visual: np.ndarray
    trend_text: np.ndarray


def make_world(seed: int = 0, visual_dim: int = 128, text_dim: int = 384) -> World:
    rng = np.random.default_rng(seed)
    k = len(TOPICS)
    return World(
        visual=rng.normal(size=(k, visual_dim)),
        text=rng.normal(size=(k, text_dim)),
        trend_visual=rng.normal(size=visual_dim),
        trend_text=rng.normal(size=text_dim),
    )


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def make_clips(
    world: World,
    n: int,
    *,
    seed: int,
    day: str = "2026-11-01",
    trend_rate: float = 0.0,
    mix_concentration: float = 60.0,
) -> pd.DataFrame:
    """``n`` clips published on ``day``; ``trend_rate`` of them show the trend."""
    rng = np.random.default_rng(seed)
    names = list(TOPICS)
    mix = rng.dirichlet(np.full(len(names), mix_concentration))
    topic = rng.choice(len(names), size=n, p=mix)
    trend = rng.random(n) < trend_rate
    vis = world.visual[topic] + 0.8 * rng.normal(size=(n, world.visual.shape[1]))
    vis[trend] = world.trend_visual + 0.8 * rng.normal(size=(int(trend.sum()), world.visual.shape[1]))
    txt = world.text[topic] + 1.0 * rng.normal(size=(n, world.text.shape[1]))
    txt[trend] += 0.8 * world.trend_text
    titles, ocrs, asrs = [], [], []
    for i in range(n):
        *nouns, tag = TOPICS[names[topic[i]]]
        words = [str(rng.choice(VERBS)), str(rng.choice(nouns))]
        words += [str(rng.choice(FILLER)) for _ in range(int(rng.integers(0, 3)))]
        title = " ".join(words) + f" {tag}"
        if trend[i]:
            title += f" {TREND_HASHTAG} day {int(rng.integers(1, 9))}"
        titles.append(title)
        ocrs.append("" if rng.random() < 0.5 else " ".join(rng.choice(nouns, size=int(rng.integers(1, 4)))))
        asrs.append(" ".join(rng.choice(list(VERBS) + nouns, size=int(rng.integers(4, 20)))))
    has_audio = rng.random(n) < 0.93
    rms = np.exp(rng.normal(np.log(0.1), 0.35, size=n)) * np.where(trend, 2.0, 1.0)
    score = np.where(trend, rng.beta(3.0, 6.0, size=n), rng.beta(1.2, 10.0, size=n))
    start = pd.Timestamp(day, tz="UTC")
    return pd.DataFrame(
        {
            "clip_id": [f"{day}-{seed}-{i}" for i in range(n)],
            "event_timestamp": start + pd.to_timedelta(rng.uniform(0, 86_399, size=n), unit="s"),
            "clip_embedding": list(_unit(vis).astype(np.float32)),
            "text_pooled": list(_unit(txt).astype(np.float32)),
            "title": titles,
            "ocr": ocrs,
            "asr": asrs,
            "audio_rms": np.where(has_audio, rms, 0.0),
            "has_audio": has_audio,
            "score": score,
        }
    )


def make_traffic(
    world: World, *, days: int = 8, trend_day: int = 6, per_day: int = 300, trend_rate: float = 0.3, seed: int = 100
) -> pd.DataFrame:
    """``days`` days of traffic from 2026-11-01; from ``trend_day`` on, the trend appears."""
    frames = [
        make_clips(
            world,
            per_day,
            seed=seed + d,
            day=str((pd.Timestamp("2026-11-01") + pd.Timedelta(days=d)).date()),
            trend_rate=trend_rate if d >= trend_day else 0.0,
        )
        for d in range(days)
    ]
    return pd.concat(frames, ignore_index=True)
