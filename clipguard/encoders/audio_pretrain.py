"""Contrastive pretraining of the audio encoder on copy-style soundtrack edits.

A soundtrack reused in a copy comes back time-cropped or shifted, sped up or slowed down
(pitch moves with it), louder or quieter, with noise, with other music mixed under it,
or re-encoded at a low bitrate. :class:`AudioAugment` draws one such set of edits per
view, on the waveform, and :func:`pretrain_audio` trains the Whisper encoder so that two
edited views of one clip's soundtrack are each other's nearest neighbour among the views
of a batch (symmetric InfoNCE, as the visual encoder's MoCo and SSCD train copy
descriptors), on the *mean-pooled encoder states*: exactly what the features store
(``audio_pooled``) and what the per-second audio tokens average.

Views are at most ``pretrain.audio_window_seconds`` long and run through a weight-sharing
short-window view of the encoder (:meth:`AudioEncoder.training_view`), so a step costs a
fraction of the full 20-s window. Everything draws from an explicit ``torch.Generator``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from clipguard.config import PretrainConfig
from clipguard.encoders.audio import AudioEncoder
from clipguard.encoders.contrastive import clip_loss, warmup_cosine_lr

log = logging.getLogger(__name__)

_MIN_SECONDS = 1.0


def _u(g: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand(1, generator=g))


def _p(g: torch.Generator, prob: float) -> bool:
    return float(torch.rand(1, generator=g)) < prob


@dataclass(frozen=True)
class AudioAugment:
    """Copy-style edits of one soundtrack (float waveform in [-1, 1]); ``strength`` scales the
    probabilities (0: only the crop to the view length)."""

    sample_rate: int
    max_seconds: float
    strength: float = 1.0

    def __call__(self, wave: torch.Tensor, background: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        sr, s = self.sample_rate, self.strength
        x = wave
        # time crop: keep 50-100% of the soundtrack (at least 1 s), anywhere in it
        n = len(x)
        keep = max(min(n, round(_MIN_SECONDS * sr)), round(n * _u(g, 0.5, 1.0)))
        start = int(torch.randint(0, n - keep + 1, (1,), generator=g))
        x = x[start : start + keep]
        if _p(g, 0.4 * s):  # speed change (resampled: pitch and tempo move together)
            factor = _u(g, 0.8, 1.25)
            size = max(1, round(len(x) / factor))
            x = nn.functional.interpolate(x.view(1, 1, -1), size=size, mode="linear", align_corners=False).view(-1)
        if _p(g, 0.3 * s):  # shifted: silence before it
            x = torch.cat([torch.zeros(round(_u(g, 0.0, 0.5) * sr)), x])
        x = x[: round(self.max_seconds * sr)]
        if _p(g, 0.4 * s) and len(background):  # other music mixed under it
            bg = background.repeat(math.ceil(len(x) / len(background)))[: len(x)]
            x = x + bg * (10.0 ** (_u(g, -20.0, -6.0) / 20.0)) * (x.std() / (bg.std() + 1e-6))
        if _p(g, 0.3 * s):  # low-bitrate re-encode: band-limited and quantised
            taps = int(torch.randint(2, 7, (1,), generator=g))
            length = len(x)
            x = nn.functional.avg_pool1d(x.view(1, 1, -1), taps, stride=1, padding=taps // 2, count_include_pad=False)
            x = x.view(-1)[:length]
            levels = 2.0 ** int(torch.randint(5, 9, (1,), generator=g))
            x = torch.round(x * levels) / levels
        if _p(g, 0.4 * s):  # noise at 5-30 dB SNR
            snr = _u(g, 5.0, 30.0)
            x = x + torch.randn(len(x), generator=g) * (x.std() + 1e-6) * (10.0 ** (-snr / 20.0))
        if _p(g, 0.8 * s):  # volume
            x = x * (10.0 ** (_u(g, -12.0, 6.0) / 20.0))
        return x.clamp(-1.0, 1.0)


@dataclass(frozen=True)
class AudioPretrainResult:
    steps: int
    losses: list[float]
    seconds: float
    clips: int


def pooled_states(states: torch.Tensor, valid: list[int]) -> torch.Tensor:
    """Mean of each row's first ``valid[i]`` encoder states (B x T x D -> B x D)."""
    mask = torch.zeros(states.shape[:2])
    for i, v in enumerate(valid):
        mask[i, :v] = 1.0
    return (states * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)


def pretrain_audio(
    audio: AudioEncoder,
    waves: list[torch.Tensor],
    p: PretrainConfig,
    seed: int,
    on_step: Callable[[float], None] | None = None,
) -> AudioPretrainResult:
    """Train ``audio.encoder`` in place on the soundtracks ``waves`` (int16, non-empty ones
    used); ``p.audio_steps`` steps of ``p.audio_batch_size`` clips x 2 views.

    Raises:
        ValueError: fewer than 2 clips with audio.
    """
    usable = [w for w in waves if len(w) >= audio.sample_rate * _MIN_SECONDS]
    if len(usable) < 2:
        raise ValueError(f"audio pretraining needs at least 2 clips with >= {_MIN_SECONDS} s of audio, found {len(usable)}")
    g = torch.Generator().manual_seed(seed + 7)
    batch = min(p.audio_batch_size, len(usable))
    seconds = int(p.audio_window_seconds)
    augment = AudioAugment(audio.sample_rate, seconds, p.augment_strength)
    view = audio.training_view(seconds)
    params = [q for q in audio.encoder.parameters() if q.requires_grad]
    opt = torch.optim.AdamW(params, lr=p.audio_lr, weight_decay=p.weight_decay)
    warmup = max(1, p.audio_steps // 10)
    losses: list[float] = []
    t0 = time.perf_counter()
    audio.encoder.train()
    for step in range(p.audio_steps):
        pick = torch.randperm(len(usable), generator=g)[:batch].tolist()
        clips = [usable[i].float() / 32767.0 for i in pick]
        views = []
        for _ in range(2):
            for j, x in enumerate(clips):
                views.append(augment(x, clips[(j + 1) % len(clips)], g))
        mel = audio.log_mel([v.numpy() for v in views], seconds)
        states = view(mel).last_hidden_state
        z = nn.functional.normalize(pooled_states(states, [audio.valid_states(len(v)) for v in views]), dim=-1)
        loss = clip_loss(z[:batch], z[batch:], p.audio_temperature)
        for group in opt.param_groups:
            group["lr"] = warmup_cosine_lr(step, p.audio_steps, warmup, p.audio_lr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if on_step is not None:
            on_step(losses[-1])
    audio.encoder.eval()
    return AudioPretrainResult(p.audio_steps, losses, time.perf_counter() - t0, len(usable))
