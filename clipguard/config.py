"""Typed configuration with profiles.

One pydantic model, :class:`Config`, loaded from ``configs/<profile>.yaml`` (``local`` by
default, ``gpu`` for paper-scale sizes). A profile file may ``extends:`` another one; later
values override earlier ones, and ``overrides`` (dotted keys, e.g. from CLI flags) win over
both. Every step of the pipeline reads its parameters from here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = Path(os.environ.get("CLIPGUARD_CONFIG_DIR", REPO_ROOT / "configs"))
DEFAULT_PROFILE = os.environ.get("CLIPGUARD_PROFILE", "local")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MediaConfig(_Section):
    """How media are decoded and cut into clips."""

    fps: float = Field(1.0, gt=0, description="frames sampled per second of video")
    sample_rate: int = Field(16_000, gt=0, description="audio sample rate (Hz), mono")
    frame_size: int | None = Field(
        224, gt=0, description="decoded frames are resized to frame_size x frame_size (None: native)"
    )
    clip_seconds: float = Field(20.0, gt=0, description="clip length, as in the livestream paper")
    clip_overlap_seconds: float = Field(0.0, ge=0)
    min_clip_seconds: float = Field(
        1.0, gt=0, description="a trailing window shorter than this is merged/dropped by the clipper"
    )

    @model_validator(mode="after")
    def _overlap_lt_clip(self) -> "MediaConfig":
        if self.clip_overlap_seconds >= self.clip_seconds:
            raise ValueError("clip_overlap_seconds must be smaller than clip_seconds")
        return self


class PolicyConfig(_Section):
    """The policy taxonomy clips are labelled with (multi-label)."""

    policies: tuple[str, ...] = (
        "weapons",
        "graphic_violence",
        "hate_speech",
        "scam",
        "dangerous_acts",
    )


class ValidationConfig(_Section):
    """Bounds and choices of the data contract (see clipguard.data.validate)."""

    min_duration_s: float = Field(0.5, ge=0)
    max_duration_s: float = Field(4 * 3600.0, gt=0)
    max_file_bytes: int = Field(2 * 1024**3, gt=0, description="larger uploads are quarantined")
    max_title_chars: int = 512
    max_ocr_chars: int = 4096
    max_asr_chars: int = 20_000
    min_timestamp: str = "2000-01-01T00:00:00Z"
    max_timestamp: str = "2100-01-01T00:00:00Z"
    # Whether a decodable file without an audio track, or with a variable frame rate, is
    # accepted with a flag (the reader handles both) or quarantined.
    no_audio: Literal["flag", "quarantine"] = "flag"
    variable_frame_rate: Literal["flag", "quarantine"] = "flag"
    probe_workers: int = Field(2, ge=1)


class SynthConfig(_Section):
    """Defaults of the synthetic corpus generator (clipguard.data.synth)."""

    clips: int = Field(480, ge=40, description="base short videos (before copies)")
    days: int = Field(8, ge=2)
    trend_day: int = Field(6, ge=1, description="0-based day on which the new trend starts")
    start_date: str = "2026-11-01"
    width: int = 160
    height: int = 120
    video_fps: float = 10.0
    min_seconds: float = 4.0
    max_seconds: float = 10.0
    streams: int = Field(4, ge=0, description="long livestream recordings cut into 20-s clips")
    stream_seconds: float = 64.0
    violation_rate: float = Field(0.05, ge=0, le=1)
    lookalike_rate: float = Field(0.06, ge=0, le=1, description="benign hard negatives")
    pairs_per_clip: float = Field(3.0, gt=0)
    positive_rate: float = Field(0.05, gt=0, lt=1, description="RCI positives among pairs")
    trend_rate: float = Field(0.3, ge=0, le=1, description="share of trend-day clips showing the trend")
    workers: int = Field(2, ge=1)

    @model_validator(mode="after")
    def _trend_in_range(self) -> "SynthConfig":
        if not 0 < self.trend_day < self.days:
            raise ValueError(f"trend_day must be in 1..days-1 (days={self.days}, got {self.trend_day})")
        return self


class EncoderConfig(_Section):
    """Frozen-encoder sizes (used by the feature pipeline)."""

    vision_image_size: int = 64
    vision_embed_dim: int = 32
    vision_depths: tuple[int, ...] = (1, 1)
    vision_heads: tuple[int, ...] = (2, 4)
    audio_d_model: int = 64
    audio_layers: int = 2
    audio_heads: int = 4
    audio_mel_bins: int = 80
    text_model_path: str | None = Field(
        None, description="sentence-transformers directory; None = the bundled all-MiniLM-L6-v2"
    )
    embedding_dim: int = 128
    checkpoint_dir: str | None = Field(None, description="gpu profile: local checkpoint directory")


class Config(BaseModel):
    """The whole configuration of one run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: str = "local"
    seed: int = 0
    data_root: str = "data/corpus"
    work_dir: str = "runs"
    media: MediaConfig = MediaConfig()
    policy: PolicyConfig = PolicyConfig()
    validation: ValidationConfig = ValidationConfig()
    synth: SynthConfig = SynthConfig()
    encoders: EncoderConfig = EncoderConfig()

    @field_validator("profile")
    @classmethod
    def _profile_name(cls, v: str) -> str:
        if not v or "/" in v:
            raise ValueError(f"invalid profile name {v!r}")
        return v


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _read_profile(name: str, config_dir: Path, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    if name in seen:
        raise ValueError(f"profile inheritance cycle: {' -> '.join((*seen, name))}")
    path = config_dir / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in config_dir.glob("*.yaml"))
        raise FileNotFoundError(f"unknown profile {name!r}: no {path} (known: {', '.join(known) or 'none'})")
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: top level must be a mapping")
    parent = raw.pop("extends", None)
    if parent:
        raw = _deep_merge(_read_profile(parent, config_dir, (*seen, name)), raw)
    raw["profile"] = name
    return raw


def _set_dotted(d: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    cur = d
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
        if not isinstance(cur, dict):
            raise ValueError(f"override {key!r}: {p!r} is not a section")
    cur[parts[-1]] = value


def load_config(
    profile: str | None = None,
    overrides: dict[str, Any] | None = None,
    config_dir: Path | str | None = None,
) -> Config:
    """Load ``configs/<profile>.yaml`` and apply dotted ``overrides`` (None values are skipped)."""
    cdir = Path(config_dir) if config_dir else CONFIG_DIR
    raw = _read_profile(profile or DEFAULT_PROFILE, cdir)
    for key, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(raw, key, value)
    return Config.model_validate(raw)


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """Parse ``key=value`` strings (value as YAML) from ``--set`` CLI options."""
    out: dict[str, Any] = {}
    for item in pairs:
        if "=" not in item:
            raise ValueError(f"--set expects key=value, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = yaml.safe_load(v)
    return out
