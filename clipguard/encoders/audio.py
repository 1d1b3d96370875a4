"""Audio encoder: the Whisper encoder (``transformers``) on 80-bin log-mel features.

Whisper encodes fixed windows (30 s in the original; here ``window_seconds`` =
``ceil(cfg.media.clip_seconds)``, 20 s -> ``max_source_positions`` = 1000 states, 50 per
second). A clip's audio is cut into such windows (one for a clip up to the window length),
log-mel features come from a locally constructed ``WhisperFeatureExtractor`` (no hub), and
the encoder states covering real audio (not the padding) are mean-pooled to
``tokens_per_second`` audio tokens (1 per second by default) and to one pooled vector.
A clip without an audio track has no tokens and a zero pooled vector.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from clipguard.config import EncoderConfig

if TYPE_CHECKING:
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

log = logging.getLogger(__name__)

WHISPER_CHECKPOINT_SUBDIR = "whisper-small"
"""``cfg.encoders.checkpoint_dir/<this>``: a Hugging Face Whisper checkpoint (gpu profile)."""

HOP_LENGTH = 160
N_FFT = 400
_CONV_STRIDE = 2  # Whisper's second conv halves the mel frame rate
_MAX_WINDOWS_PER_FORWARD = 16


def whisper_window_seconds(clip_seconds: float) -> int:
    """Seconds of audio Whisper sees per forward pass: the clip length, rounded up."""
    return max(1, math.ceil(clip_seconds - 1e-9))


def whisper_config(enc: EncoderConfig, clip_seconds: float, sample_rate: int):
    """A ``WhisperConfig`` whose encoder fits one clip (``max_source_positions`` from its length)."""
    from transformers import WhisperConfig

    positions = whisper_window_seconds(clip_seconds) * sample_rate // HOP_LENGTH // _CONV_STRIDE
    return WhisperConfig(
        num_mel_bins=enc.audio_mel_bins,
        d_model=enc.audio_d_model,
        encoder_layers=enc.audio_layers,
        encoder_attention_heads=enc.audio_heads,
        encoder_ffn_dim=4 * enc.audio_d_model,
        decoder_layers=1,
        decoder_attention_heads=enc.audio_heads,
        decoder_ffn_dim=4 * enc.audio_d_model,
        max_source_positions=positions,
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
    )


@dataclass(frozen=True)
class AudioFeatures:
    """Audio features of one clip."""

    tokens: torch.Tensor
    """S_a x D_a pooled encoder states (S_a = 0 without audio)"""
    pooled: torch.Tensor
    """D_a mean of the encoder states over the real audio (zeros without audio)"""


class AudioEncoder(nn.Module):
    """Whisper encoder + log-mel front end + pooling to a few tokens per second."""

    def __init__(self, encoder: WhisperEncoder, sample_rate: int, window_seconds: int, tokens_per_second: float = 1.0) -> None:
        from transformers import WhisperFeatureExtractor

        super().__init__()
        self.encoder = encoder
        self.sample_rate = int(sample_rate)
        self.window_seconds = int(window_seconds)
        self.tokens_per_second = float(tokens_per_second)
        positions = int(encoder.config.max_source_positions)
        expected = self.window_seconds * self.sample_rate // HOP_LENGTH // _CONV_STRIDE
        if positions != expected:
            raise ValueError(
                f"Whisper encoder has {positions} positions but a {self.window_seconds}-s window at "
                f"{self.sample_rate} Hz needs {expected}"
            )
        self.feature_extractor = WhisperFeatureExtractor(
            feature_size=int(encoder.config.num_mel_bins),
            sampling_rate=self.sample_rate,
            hop_length=HOP_LENGTH,
            chunk_length=self.window_seconds,
            n_fft=N_FFT,
        )

    @property
    def dim(self) -> int:
        return int(self.encoder.config.d_model)

    @property
    def states_per_second(self) -> float:
        return self.encoder.config.max_source_positions / self.window_seconds

    def log_mel(self, windows: list[np.ndarray], seconds: int | None = None) -> torch.Tensor:
        """Audio windows (each <= ``seconds``, default window_seconds, of mono float32) ->
        B x mel x frames, zero-padded to ``seconds``.

        Whisper's log-mel (``WhisperFeatureExtractor``'s batched torch STFT path: power
        spectrum, its mel filters, log10, an 8-decade floor below the batch row's maximum,
        ``(x + 4) / 4``), on waveforms padded with zeros as its ``padding="max_length"`` does.
        """
        n = (seconds or self.window_seconds) * self.sample_rate
        padded = np.zeros((len(windows), n), dtype=np.float32)
        for i, w in enumerate(windows):
            w = np.asarray(w, dtype=np.float32)[:n]
            padded[i, : len(w)] = w
        mel = self.feature_extractor._torch_extract_fbank_features(padded)
        return torch.from_numpy(np.ascontiguousarray(mel, dtype=np.float32))

    def training_view(self, seconds: int) -> nn.Module:
        """A Whisper encoder for ``seconds``-long windows that *shares* this encoder's weights
        (its position table is the first rows of this one's, fixed sinusoids in both), for
        contrastive training on short views at a fraction of the full window's cost."""
        import copy

        from transformers.models.whisper.modeling_whisper import WhisperEncoder

        positions = seconds * self.sample_rate // HOP_LENGTH // _CONV_STRIDE
        if positions >= self.encoder.config.max_source_positions:
            return self.encoder
        config = copy.deepcopy(self.encoder.config)
        config.max_source_positions = positions
        view = WhisperEncoder(config)
        for name in ("conv1", "conv2", "layers", "layer_norm"):
            setattr(view, name, getattr(self.encoder, name))
        view.embed_positions.weight.data = self.encoder.embed_positions.weight.data[:positions]
        view.embed_positions.requires_grad_(False)
        return view

    def valid_states(self, n_samples: int) -> int:
        """How many encoder states cover ``n_samples`` of real audio (at least 1)."""
        return max(1, math.ceil(n_samples / self.sample_rate * self.states_per_second))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """B x mel x frames -> B x positions x D_a encoder states."""
        return self.encoder(mel).last_hidden_state

    @torch.inference_mode()
    def encode_clips(self, audios: list[np.ndarray], has_audio: list[bool]) -> list[AudioFeatures]:
        """Encode several clips' audio (mono float32 at ``sample_rate``) in batched passes."""
        if len(audios) != len(has_audio):
            raise ValueError("audios and has_audio differ in length")
        window = self.window_seconds * self.sample_rate
        pieces: list[tuple[int, np.ndarray]] = []  # (clip index, window samples)
        for i, (a, present) in enumerate(zip(audios, has_audio)):
            if present and len(a) > 0:
                pieces.extend((i, a[s : s + window]) for s in range(0, len(a), window))
        states: list[torch.Tensor] = []
        for s in range(0, len(pieces), _MAX_WINDOWS_PER_FORWARD):
            chunk = [w for _, w in pieces[s : s + _MAX_WINDOWS_PER_FORWARD]]
            states.extend(self(self.log_mel(chunk)).unbind(0))

        step = max(1, round(self.states_per_second / self.tokens_per_second))
        sums = torch.zeros(len(audios), self.dim)
        counts = [0] * len(audios)
        tokens: list[list[torch.Tensor]] = [[] for _ in audios]
        for (i, w), h in zip(pieces, states):
            valid = min(h.shape[0], self.valid_states(len(w)))
            h = h[:valid]
            tokens[i].append(torch.stack([seg.mean(dim=0) for seg in h.split(step)]))
            sums[i] += h.sum(dim=0)
            counts[i] += valid
        return [
            AudioFeatures(torch.cat(tokens[i]), sums[i] / counts[i])
            if counts[i]
            else AudioFeatures(torch.zeros(0, self.dim), torch.zeros(self.dim))
            for i in range(len(audios))
        ]


def build_audio_encoder(
    enc: EncoderConfig, clip_seconds: float, sample_rate: int, tokens_per_second: float = 1.0
) -> AudioEncoder:
    """An audio encoder for ``cfg.encoders`` and the clip length, random-initialised.

    In the gpu profile ``<checkpoint_dir>/whisper-small`` is loaded instead when present; its
    (sinusoidal, fixed) position table is cut to the clip's window. Seed the init with
    :func:`clipguard.encoders.runtime.seeded`.
    """
    from transformers import WhisperModel
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    window = whisper_window_seconds(clip_seconds)
    cfg = whisper_config(enc, clip_seconds, sample_rate)
    ckpt = Path(enc.checkpoint_dir) / WHISPER_CHECKPOINT_SUBDIR if enc.checkpoint_dir else None
    if ckpt is not None and ckpt.is_dir():
        encoder = WhisperModel.from_pretrained(str(ckpt), local_files_only=True).encoder
        have, need = encoder.config.max_source_positions, cfg.max_source_positions
        if need > have:
            raise ValueError(f"{ckpt} covers {have} positions; {window}-s clips need {need}")
        if need < have:
            table = nn.Embedding(need, encoder.config.d_model)
            table.weight.data.copy_(encoder.embed_positions.weight.data[:need])
            table.requires_grad_(False)
            encoder.embed_positions = table
            encoder.config.max_source_positions = need
        log.info("audio encoder loaded from %s (%d positions)", ckpt, need)
    else:
        if ckpt is not None:
            log.warning("no Whisper checkpoint at %s: audio encoder is randomly initialised", ckpt)
        encoder = WhisperEncoder(cfg)
    return AudioEncoder(encoder, sample_rate, window, tokens_per_second)
