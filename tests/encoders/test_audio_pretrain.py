"""Audio pretraining: copy-style soundtrack edits and a contrastive loop that learns them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clipguard.encoders.audio import build_audio_encoder
from clipguard.encoders.audio_pretrain import AudioAugment, pooled_states, pretrain_audio
from tests.encoders.conftest import tiny_config

SR = 16_000


def _tracks(n: int, seconds: float, seed: int = 0) -> list[torch.Tensor]:
    """``n`` distinct soundtracks (a few random tones with a rhythm), int16 as the cache keeps them."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * SR)) / SR
    out = []
    for _ in range(n):
        freqs = rng.uniform(150, 3000, 3)
        beat = (np.sin(2 * np.pi * rng.uniform(1, 4) * t) > 0).astype(np.float32)
        x = sum(np.sin(2 * np.pi * f * t) for f in freqs) * (0.3 + 0.7 * beat) / 3
        out.append(torch.from_numpy((0.5 * x * 32767).astype(np.int16)))
    return out


def test_augment_is_reproducible_bounded_and_a_crop_at_strength_zero():
    wave = _tracks(1, 3.0)[0].float() / 32767
    aug = AudioAugment(SR, max_seconds=2, strength=1.0)
    a = aug(wave, wave.flip(0), torch.Generator().manual_seed(3))
    b = aug(wave, wave.flip(0), torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and len(a) <= 2 * SR and a.abs().max() <= 1.0
    views = [aug(wave, wave.flip(0), torch.Generator().manual_seed(s)) for s in range(8)]
    assert len({len(v) for v in views}) > 1  # crops and speed changes vary the length

    plain = AudioAugment(SR, max_seconds=3, strength=0.0)(wave, wave, torch.Generator().manual_seed(5))
    start = int(torch.nonzero(wave == plain[0])[0])  # a contiguous slice of the input, unchanged
    assert len(plain) >= SR // 2 and torch.equal(wave[start : start + len(plain)], plain)


def test_training_view_shares_the_encoder_weights():
    cfg = tiny_config()
    audio = build_audio_encoder(cfg.encoders, cfg.media.clip_seconds, SR)
    view = audio.training_view(2)
    assert view.config.max_source_positions == 100 < audio.encoder.config.max_source_positions
    assert view.layers is audio.encoder.layers and view.conv1 is audio.encoder.conv1
    assert torch.equal(view.embed_positions.weight, audio.encoder.embed_positions.weight[:100])
    mel = audio.log_mel([np.zeros(SR, dtype=np.float32)], 2)
    assert mel.shape == (1, cfg.encoders.audio_mel_bins, 200)
    assert view(mel).last_hidden_state.shape == (1, 100, audio.dim)
    assert audio.training_view(60) is audio.encoder  # no shorter view than the window itself


def test_pooled_states_ignore_the_padding():
    states = torch.arange(12, dtype=torch.float32).view(2, 3, 2)
    assert torch.equal(pooled_states(states, [1, 3]), torch.tensor([[0.0, 1.0], [8.0, 9.0]]))


def test_pretraining_makes_edited_soundtracks_find_their_original():
    """Retrieval of an edited view among 12 originals by pooled audio vector, before and after."""
    cfg = tiny_config(
        **{
            "pretrain.audio_steps": 40,
            "pretrain.audio_batch_size": 12,
            "pretrain.audio_window_seconds": 2,
            "pretrain.audio_lr": 3e-3,
        }
    )
    torch.manual_seed(0)
    audio = build_audio_encoder(cfg.encoders, cfg.media.clip_seconds, SR)
    tracks = _tracks(12, 2.0)
    aug = AudioAugment(SR, max_seconds=2)

    def accuracy() -> float:
        g = torch.Generator().manual_seed(99)
        originals = [t.float() / 32767 for t in tracks]
        edited = [aug(x, originals[(i + 1) % 12], g) for i, x in enumerate(originals)]
        feats = audio.encode_clips([v.numpy() for v in originals + edited], [True] * 24)
        z = torch.nn.functional.normalize(torch.stack([f.pooled for f in feats]), dim=-1)
        return float(((z[12:] @ z[:12].t()).argmax(1) == torch.arange(12)).float().mean())

    before = accuracy()
    result = pretrain_audio(audio, tracks + [torch.zeros(0, dtype=torch.int16)], cfg.pretrain, seed=0)
    assert result.clips == 12 and result.steps == 40  # the empty soundtrack is left out
    assert np.mean(result.losses[-5:]) < result.losses[0]
    assert accuracy() > before


def test_pretraining_needs_two_soundtracks():
    cfg = tiny_config()
    audio = build_audio_encoder(cfg.encoders, cfg.media.clip_seconds, SR)
    with pytest.raises(ValueError, match="at least 2 clips"):
        pretrain_audio(audio, _tracks(1, 2.0), cfg.pretrain, seed=0)
