"""Audio synthesis: soundtracks, speech-like syllables and the audio evidence of policies.

All functions return mono float32 at the requested sample rate and are deterministic
functions of a :class:`~clipguard.synth.specs.Sound` (its ``seed`` drives every
random choice). Layers of a scene are summed and peak-limited by :func:`render_scene_audio`.

Evidence sounds (see :mod:`clipguard.synth.policies`):

* ``gunshots`` — rhythmic impulsive broadband bursts plus a scream-like harmonic sweep
  (``graphic_violence``); look-alikes ``applause`` (dense noise claps) and ``drums``
  (short *tonal* decaying bursts in a rhythm);
* ``siren`` — a two-tone or wailing alarm (half of ``dangerous_acts``);
* ``whoosh`` — band-limited noise swept upwards, repeated (the trend pattern).
"""

from __future__ import annotations

import math
import re

import numpy as np

from clipguard.synth.sources import bbb_audio
from clipguard.synth.specs import Scene, Sound

SOUND_KINDS = ("melody", "noise", "music", "speech", "gunshots", "applause", "drums", "siren", "whoosh")

_VOWEL_FORMANTS = {  # (F1, F2) Hz
    "a": (730.0, 1090.0),
    "e": (530.0, 1840.0),
    "i": (270.0, 2290.0),
    "o": (570.0, 840.0),
    "u": (300.0, 870.0),
    "y": (300.0, 2000.0),
}


def _rng(sound: Sound, salt: int = 0) -> np.random.Generator:
    return np.random.default_rng([sound.seed & 0xFFFFFFFF, salt])


def _env(n: int, sr: int, attack: float, decay: float) -> np.ndarray:
    t = np.arange(n, dtype=np.float32) / sr
    a = np.minimum(1.0, t / max(attack, 1e-4))
    return (a * np.exp(-t / max(decay, 1e-4))).astype(np.float32)


def _add(out: np.ndarray, start: int, x: np.ndarray) -> None:
    if start >= len(out):
        return
    s = max(0, start)
    x = x[s - start :]
    e = min(len(out), s + len(x))
    out[s:e] += x[: e - s]


def _lowpass_noise(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    x = rng.standard_normal(n + width).astype(np.float32)
    c = np.cumsum(x)
    y = (c[width:] - c[:-width]) / math.sqrt(width)
    return y[:n].astype(np.float32)


def _shaped_noise(rng: np.random.Generator, n: int, alpha: float) -> np.ndarray:
    """Noise with a 1/f^alpha power spectrum, unit peak."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    y = np.fft.irfft(spec / f ** (alpha / 2.0), n).astype(np.float32)
    return y / max(1e-6, float(np.abs(y).max()))


# -- soundtracks ---------------------------------------------------------------------------


def _melody(s: Sound, n: int, sr: int) -> np.ndarray:
    rng = _rng(s)
    root = s.pitch or float(rng.uniform(180.0, 380.0))
    scale = [0, 2, 4, 7, 9] if rng.random() < 0.5 else [0, 3, 5, 7, 10]
    beat = float(rng.uniform(0.16, 0.4))
    harm = rng.uniform(0.1, 0.6, size=3)
    out = np.zeros(n, np.float32)
    pos, step = 0, int(rng.integers(0, len(scale)))
    while pos < n:
        dur = int(beat * sr * rng.choice([1, 1, 2, 3]))
        step = int(np.clip(step + rng.integers(-2, 3), -3, 2 * len(scale)))
        octave, deg = divmod(step, len(scale))
        f = root * 2 ** (octave + scale[deg] / 12.0)
        t = np.arange(dur, dtype=np.float32) / sr
        tone = np.sin(2 * np.pi * f * t)
        tone += sum(h * np.sin(2 * np.pi * f * (k + 2) * t) for k, h in enumerate(harm))
        _add(out, pos, (0.35 * tone * _env(dur, sr, 0.01, beat * 1.5)).astype(np.float32))
        pos += dur
    # a soft bass note per bar
    bar = int(4 * beat * sr)
    for b in range(0, n, bar):
        t = np.arange(bar, dtype=np.float32) / sr
        bass = 0.25 * np.sin(2 * np.pi * root / 2 * t) * _env(bar, sr, 0.02, 4 * beat)
        _add(out, b, bass.astype(np.float32))
    return out


def _noise(s: Sound, n: int, sr: int) -> np.ndarray:
    rng = _rng(s)
    y = _shaped_noise(rng, n, float(rng.uniform(0.8, 2.0)))
    # slow swells (wind, crowd, traffic)
    lfo_f = float(rng.uniform(0.1, 0.5))
    t = np.arange(n, dtype=np.float32) / sr
    return (0.5 * y * (0.6 + 0.4 * np.sin(2 * np.pi * lfo_f * t + rng.uniform(0, 6.28)))).astype(np.float32)


def _music(s: Sound, n: int, sr: int) -> np.ndarray:
    track = bbb_audio(sr)
    rng = _rng(s)
    off = int(rng.integers(0, len(track)))
    idx = (off + np.arange(n)) % len(track)
    return track[idx]


# -- speech --------------------------------------------------------------------------------


def _syllables(word: str) -> list[str]:
    parts = re.findall(r"[^aeiouy]*[aeiouy]+", word.lower())
    parts = parts or [word.lower() or "a"]
    return parts[:4]


def speech_timeline(text: str, seed: int, duration: float) -> list[tuple[str, float, float]]:
    """Word timings ``(word, start_s, end_s)`` of the syllable bursts spoken for ``text``.

    Deterministic in ``(text, seed, duration)``: syllables last 0.10–0.18 s, words are
    separated by short pauses, sentences by longer ones. When the speech would not fit in
    ``duration`` the timings are compressed uniformly; it never spills past the end.
    """
    rng = np.random.default_rng([seed & 0xFFFFFFFF, 0x5EEC])
    words = text.split()
    spans: list[tuple[str, float, float]] = []
    t = float(rng.uniform(0.1, 0.4))
    for w in words:
        n_syl = len(_syllables(re.sub(r"[^a-zA-Z]", "", w) or "a"))
        d = float(sum(rng.uniform(0.10, 0.18) for _ in range(n_syl)))
        spans.append((w, t, t + d))
        t += d + float(rng.uniform(0.05, 0.12)) + (0.25 if w[-1:] in ".!?," else 0.0)
    if not spans:
        return []
    end = spans[-1][2] + 0.1
    if end > duration:
        k = duration / end
        spans = [(w, a * k, b * k) for w, a, b in spans]
    return spans


def _speech(s: Sound, n: int, sr: int) -> np.ndarray:
    out = np.zeros(n, np.float32)
    rng = _rng(s, 1)
    f0 = s.pitch or float(rng.uniform(95.0, 230.0))
    for word, a, b in speech_timeline(s.text, s.seed, n / sr):
        syl = _syllables(re.sub(r"[^a-zA-Z]", "", word) or "a")
        edges = np.linspace(a, b, len(syl) + 1)
        for k, part in enumerate(syl):
            m = int((edges[k + 1] - edges[k]) * sr)
            if m <= 8:
                continue
            t = np.arange(m, dtype=np.float32) / sr
            vowel = next((c for c in part if c in _VOWEL_FORMANTS), "a")
            f1, f2 = _VOWEL_FORMANTS[vowel]
            pitch = f0 * (1.08 - 0.16 * t / t[-1]) * (1 + 0.02 * np.sin(2 * np.pi * 5 * t))
            phase = 2 * np.pi * np.cumsum(pitch) / sr
            harmonics = np.arange(1, int(3800 // f0) + 1, dtype=np.float32)
            hf = harmonics * f0
            amp = np.exp(-(((hf - f1) / 110.0) ** 2)) + 0.6 * np.exp(-(((hf - f2) / 150.0) ** 2)) + 0.05
            voiced = (np.sin(np.outer(phase, harmonics)) * amp).sum(axis=1)
            env = np.maximum(0.0, np.sin(np.pi * np.minimum(1.0, t / t[-1]))) ** 0.6
            burst = 0.25 * voiced / max(1e-6, float(amp.sum())) * 3.0 * env
            if part[0] not in _VOWEL_FORMANTS:  # consonant onset: a short hiss
                c = min(m, int(0.03 * sr))
                hiss = np.diff(rng.standard_normal(c + 1)).astype(np.float32) * 0.08
                burst[:c] += hiss * np.linspace(1, 0, c, dtype=np.float32)
            _add(out, int(edges[k] * sr), burst.astype(np.float32))
    return out


# -- evidence sounds -----------------------------------------------------------------------


def _gunshots(s: Sound, n: int, sr: int) -> np.ndarray:
    rng = _rng(s)
    out = np.zeros(n, np.float32)
    pos = int(rng.uniform(0.05, 0.4) * sr)
    while pos < n:
        shots, gap = int(rng.integers(3, 7)), float(rng.uniform(0.22, 0.45))
        for k in range(shots):
            m = int(0.25 * sr)
            t = np.arange(m, dtype=np.float32) / sr
            crack = rng.standard_normal(m).astype(np.float32) * np.exp(-t / 0.035)
            thump = np.sin(2 * np.pi * 55 * t) * np.exp(-t / 0.09)
            _add(out, pos + int(k * gap * sr), (0.9 * crack + 0.6 * thump).astype(np.float32))
        pos += int((shots * gap + rng.uniform(0.6, 1.4)) * sr)
    # scream-like sweeps (harmonic, rising then falling, with vibrato)
    for start in np.arange(rng.uniform(0.3, 1.0), n / sr, rng.uniform(2.2, 3.2)):
        m = int(rng.uniform(0.8, 1.3) * sr)
        t = np.arange(m, dtype=np.float32) / sr
        u = t / t[-1]
        arc = np.maximum(0.0, np.sin(np.pi * u))
        f = 700 + 1000 * arc**0.7 + 40 * np.sin(2 * np.pi * 6.5 * t)
        ph = 2 * np.pi * np.cumsum(f) / sr
        scream = (np.sin(ph) + 0.5 * np.sin(2 * ph) + 0.25 * np.sin(3 * ph)) * arc**0.5
        _add(out, int(start * sr), (0.35 * scream).astype(np.float32))
    return out


def _applause(s: Sound, n: int, sr: int) -> np.ndarray:
    rng = _rng(s)
    out = np.zeros(n, np.float32)
    rate = float(rng.uniform(25, 60))
    times = np.cumsum(rng.exponential(1.0 / rate, size=int(rate * n / sr * 1.2) + 4))
    m = int(0.012 * sr)
    t = np.arange(m, dtype=np.float32) / sr
    for tt in times[times < n / sr]:
        clap = np.diff(rng.standard_normal(m + 1)).astype(np.float32) * np.exp(-t / 0.004)
        _add(out, int(tt * sr), 0.25 * float(rng.uniform(0.4, 1.0)) * clap)
    return out


def _drums(s: Sound, n: int, sr: int) -> np.ndarray:
    rng = _rng(s)
    out = np.zeros(n, np.float32)
    beat = 60.0 / float(rng.uniform(95, 140))
    pattern = rng.choice([60.0, 110.0, 180.0], size=8)
    k = 0
    for start in np.arange(0.0, n / sr, beat / 2):
        f = float(pattern[k % 8])
        k += 1
        m = int(0.22 * sr)
        t = np.arange(m, dtype=np.float32) / sr
        ph = 2 * np.pi * np.cumsum(f * (1 + 0.8 * np.exp(-t / 0.03))) / sr
        _add(out, int(start * sr), (0.7 * np.sin(ph) * np.exp(-t / 0.07)).astype(np.float32))
    return out


def _siren(s: Sound, n: int, sr: int) -> np.ndarray:
    rng = _rng(s)
    t = np.arange(n, dtype=np.float32) / sr
    if rng.random() < 0.5:  # two-tone
        hi, lo = float(rng.uniform(850, 1000)), float(rng.uniform(600, 720))
        half = float(rng.uniform(0.35, 0.55))
        f = np.where((t // half) % 2 == 0, hi, lo)
    else:  # wail
        f = 650 + 500 * np.abs(((t * rng.uniform(0.4, 0.8)) % 2.0) - 1.0)
    ph = 2 * np.pi * np.cumsum(f) / sr
    return (0.45 * (np.sin(ph) + np.sin(3 * ph) / 3 + np.sin(5 * ph) / 5)).astype(np.float32)


def _whoosh(s: Sound, n: int, sr: int) -> np.ndarray:
    rng = _rng(s)
    out = np.zeros(n, np.float32)
    every = float(rng.uniform(1.1, 1.7))
    for start in np.arange(rng.uniform(0.0, 0.4), n / sr, every):
        m = int(rng.uniform(0.5, 0.8) * sr)
        t = np.arange(m, dtype=np.float32) / sr
        u = t / t[-1]
        f = 250 * (14.0**u)  # 250 Hz -> 3.5 kHz
        ph = 2 * np.pi * np.cumsum(f) / sr
        band = sum(_lowpass_noise(rng, m, 40) * np.sin(ph * r) for r in (1.0, 1.45, 2.1))
        _add(out, int(start * sr), (0.3 * band * np.sin(np.pi * u) ** 2).astype(np.float32))
    return out


_SYNTHS = {
    "melody": _melody,
    "noise": _noise,
    "music": _music,
    "speech": _speech,
    "gunshots": _gunshots,
    "applause": _applause,
    "drums": _drums,
    "siren": _siren,
    "whoosh": _whoosh,
}


def render_sound(sound: Sound, duration: float, sample_rate: int) -> np.ndarray:
    """One layer over a scene of ``duration`` seconds (silent outside ``[t0, t1)``)."""
    if sound.kind not in _SYNTHS:
        raise ValueError(f"unknown sound kind {sound.kind!r} (known: {', '.join(SOUND_KINDS)})")
    n = int(round(duration * sample_rate))
    a = int(round(max(0.0, sound.t0) * sample_rate))
    b = int(round(min(duration, sound.t1) * sample_rate))
    out = np.zeros(n, np.float32)
    if b - a <= 0:
        return out
    layer = _SYNTHS[sound.kind](sound, b - a, sample_rate)
    fade = min((b - a) // 4, int(0.01 * sample_rate))
    if fade > 0:
        ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
        layer[:fade] *= ramp
        layer[-fade:] *= ramp[::-1]
    out[a:b] = sound.gain * layer
    return out


def mix(layers: list[np.ndarray], peak: float = 0.9) -> np.ndarray:
    """Sum layers and scale down (never up) so the peak is at most ``peak``."""
    y = np.sum(layers, axis=0).astype(np.float32)
    m = float(np.abs(y).max()) if y.size else 0.0
    return y * (peak / m) if m > peak else y


def render_scene_audio(scene: Scene, sample_rate: int) -> np.ndarray:
    n = int(round(scene.duration * sample_rate))
    if not scene.sounds:
        return np.zeros(n, np.float32)
    return mix([render_sound(s, scene.duration, sample_rate) for s in scene.sounds])
