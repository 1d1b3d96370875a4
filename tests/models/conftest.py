"""Tiny MatchLM / MatchLite configurations and inputs shared by the model tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clipguard.config import Config, load_config

TINY_OVERRIDES = {
    "models.teacher.audio_window_seconds": 1,  # 50 Whisper states
    "models.teacher.frame_budget": 6,
    "models.teacher.min_frames": 2,
    "models.teacher.max_text_tokens": 8,
    "models.teacher.text_hidden_size": 32,
    "models.teacher.text_intermediate_size": 64,
    "models.teacher.vision_hidden_size": 32,
    "models.teacher.vision_intermediate_size": 64,
    "models.teacher.audio_d_model": 32,
    "models.teacher.audio_ffn_dim": 64,
    "models.teacher.head_hidden_size": 32,
    "models.teacher.lora_r": 4,
    "models.teacher.lora_alpha": 8,
    "models.student.max_visual_tokens": 8,
    "models.student.max_audio_tokens": 6,
    "models.student.max_text_tokens": 10,
    "models.student.visual_dim": 12,
    "models.student.audio_dim": 10,
    "models.student.text_dim": 14,
    "models.student.hidden_size": 16,
    "models.student.grid_size": 8,
    "models.student.resnet_widths": [8, 8, 16, 16],
    "models.student.head_hidden_size": 16,
}


@pytest.fixture(scope="session")
def tiny_cfg() -> Config:
    return load_config("local", overrides=TINY_OVERRIDES)


@pytest.fixture(scope="session")
def tokenizer():
    from clipguard.models.tokenizer import load_tokenizer

    return load_tokenizer()


def random_video(rng: np.random.Generator, frames: int, h: int = 24, w: int = 32) -> np.ndarray:
    return rng.integers(0, 256, (frames, h, w, 3), dtype=np.uint8)


@pytest.fixture
def pair_examples():
    """Two pairs with different lengths; one clip has no audio, one pair lacks a sub-label."""
    from clipguard.models.matchlm import PairExample

    rng = np.random.default_rng(0)
    wave = (0.1 * rng.standard_normal(12_000)).astype(np.float32)
    return [
        PairExample(random_video(rng, 9), random_video(rng, 3), wave, None, "cat video", "copy of cat", {"rci": 1, "reason": 0}),
        PairExample(random_video(rng, 2), random_video(rng, 4), None, wave[:4000], "", "dog", {"rci": 0}),
    ]


@pytest.fixture
def seeded() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """The tiny models gain nothing from intra-op threads, and a thread pool on a busy machine costs seconds."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
