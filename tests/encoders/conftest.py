"""Fixtures for encoder tests: tiny model sizes and a tiny validated data root."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from clipguard.config import Config, load_config
from tests.encoders.roots import build_validated_root

TINY_OVERRIDES = {
    "media.frame_size": 32,
    "media.clip_seconds": 4.0,
    "encoders.vision_image_size": 32,
    "encoders.vision_embed_dim": 16,
    "encoders.vision_depths": [1, 1],
    "encoders.vision_heads": [1, 2],
    "encoders.audio_d_model": 32,
    "encoders.audio_layers": 1,
    "encoders.audio_heads": 2,
    "encoders.embedding_dim": 16,
    "pretrain.epochs": 1,
    "pretrain.batch_size": 4,
    "pretrain.queue_size": 4,
    "pretrain.frames_per_view": 2,
    "pretrain.audio_steps": 2,
    "pretrain.audio_batch_size": 4,
    "pretrain.audio_window_seconds": 2,
    "pretrain.torch_threads": 1,
    "features.batch_size": 4,
    "features.shard_clips": 4,
    "features.torch_threads": 1,
}


def tiny_config(**extra) -> Config:
    """The local profile shrunk to test sizes (plus ``extra`` dotted overrides)."""
    return load_config("local", {**TINY_OVERRIDES, **extra})


@pytest.fixture(scope="session")
def tiny_cfg() -> Config:
    return tiny_config()


@pytest.fixture(scope="session")
def validated_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_validated_root(tmp_path_factory.mktemp("validated_root"))


@pytest.fixture
def validated_root(tmp_path: Path, validated_master: Path) -> Path:
    """A fresh copy of the tiny validated root (tests may modify it)."""
    root = tmp_path / "root"
    shutil.copytree(validated_master, root)
    return root
