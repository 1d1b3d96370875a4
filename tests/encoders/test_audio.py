import numpy as np
import pytest
import torch

from clipguard.encoders.audio import build_audio_encoder, whisper_config, whisper_window_seconds
from clipguard.encoders.runtime import seeded

SR = 16_000


def _tone(seconds: float, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_positions_fit_the_clip(tiny_cfg):
    assert whisper_window_seconds(20.0) == 20
    assert whisper_window_seconds(12.5) == 13
    assert whisper_config(tiny_cfg.encoders, 20.0, SR).max_source_positions == 1000


@pytest.fixture(scope="module")
def audio_encoder(tiny_cfg):
    with seeded(0):
        return build_audio_encoder(tiny_cfg.encoders, tiny_cfg.media.clip_seconds, SR).eval()


def test_tokens_per_second_and_no_audio(audio_encoder):
    d = audio_encoder.dim
    feats = audio_encoder.encode_clips([_tone(2.0), _tone(0.5), np.zeros(SR, np.float32), _tone(3.0)], [True, True, False, True])
    assert [tuple(f.tokens.shape) for f in feats] == [(2, d), (1, d), (0, d), (3, d)]
    assert torch.count_nonzero(feats[2].pooled) == 0
    assert all(torch.isfinite(f.pooled).all() for f in feats)
    # the pooled vector is the mean of the states over the real audio, i.e. of equal-size token groups
    assert torch.allclose(feats[0].pooled, feats[0].tokens.mean(0), atol=1e-5)


def test_long_audio_is_cut_into_windows(audio_encoder):
    window = audio_encoder.window_seconds
    feats = audio_encoder.encode_clips([_tone(2.5 * window)], [True])[0]
    assert feats.tokens.shape[0] == int(np.ceil(2.5 * window))


def test_batching_does_not_change_features(audio_encoder):
    a, b = _tone(2.0, 300.0), _tone(1.0, 900.0)
    together = audio_encoder.encode_clips([a, b], [True, True])
    alone = audio_encoder.encode_clips([b], [True])
    assert torch.allclose(together[1].tokens, alone[0].tokens, atol=1e-5)
