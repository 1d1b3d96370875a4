"""The three frozen encoders as one versioned artifact.

An encoder directory (``<out_dir>/<encoder_version>/``, written by
:func:`clipguard.encoders.pretrain.pretrain_encoders`) holds::

    encoder.json          version, lineage (mode, data version, seed, configs), metrics,
                          and the architectures needed to rebuild the models offline
    vision.safetensors    Swin backbone + clip-embedding head
    audio.safetensors     Whisper encoder
    heads.safetensors     the text/audio projection heads of CLIP training (moco_clip only)

The text encoder is not copied: ``encoder.json`` names its directory and content
fingerprint, and loading checks that the model found is the same one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clipguard.config import Config, load_config
from clipguard.core.io import directory_fingerprint, save_tensors, write_json
from clipguard.encoders.audio import AudioEncoder, build_audio_encoder
from clipguard.encoders.runtime import quiet_hf_loading, seeded
from clipguard.encoders.text import TextEncoder, build_text_encoder, load_text_encoder, resolve_text_model_path
from clipguard.encoders.vision import VisionEncoder, build_vision_encoder

ENCODER_FILE = "encoder.json"
VISION_WEIGHTS = "vision.safetensors"
AUDIO_WEIGHTS = "audio.safetensors"
HEADS_WEIGHTS = "heads.safetensors"


@dataclass
class EncoderBundle:
    """Vision, audio and text encoders that produce one set of features."""

    vision: VisionEncoder
    audio: AudioEncoder
    text: TextEncoder

    @classmethod
    def from_config(cls, cfg: Config, vision_seed: int) -> EncoderBundle:
        """Fresh encoders for ``cfg``: vision initialised from ``vision_seed`` (it is trained),
        the frozen audio encoder from ``cfg.seed`` (or the gpu checkpoints), MiniLM as shipped."""
        with quiet_hf_loading():
            with seeded(vision_seed):
                vision = build_vision_encoder(cfg.encoders)
            with seeded(cfg.seed):
                audio = build_audio_encoder(
                    cfg.encoders, cfg.media.clip_seconds, cfg.media.sample_rate, cfg.features.audio_tokens_per_second
                )
            text = build_text_encoder(cfg.encoders, cfg.features.text_max_tokens)
        return cls(vision.eval(), audio.eval().requires_grad_(False), text)

    def architecture(self) -> dict[str, Any]:
        """What :meth:`load` needs to rebuild the models without any hub access."""
        return {
            "vision": {
                "swin": self.vision.backbone.config.to_dict(),
                "embedding_dim": self.vision.embedding_dim,
                "region_grid": self.vision.region_grid,
            },
            "audio": {
                "whisper": self.audio.encoder.config.to_dict(),
                "sample_rate": self.audio.sample_rate,
                "window_seconds": self.audio.window_seconds,
            },
            "text": {"model_dir": str(self.text.model_dir), "fingerprint": self.text.fingerprint},
        }

    def save(self, directory: str | Path, meta: dict[str, Any], heads: dict[str, Any] | None = None) -> Path:
        """Write the weights, then ``encoder.json`` (last, so its presence means complete)."""
        d = Path(directory)
        save_tensors(d / VISION_WEIGHTS, self.vision.state_dict())
        save_tensors(d / AUDIO_WEIGHTS, self.audio.encoder.state_dict())
        if heads:
            save_tensors(d / HEADS_WEIGHTS, heads)
        write_json(d / ENCODER_FILE, {**meta, "architecture": self.architecture()})
        return d

    @classmethod
    def load(cls, directory: str | Path, cfg: Config | None = None) -> tuple[EncoderBundle, dict[str, Any]]:
        """Rebuild the encoders saved in ``directory``; returns them and ``encoder.json``.

        ``cfg`` supplies run-time settings that do not change weights
        (``features.text_max_tokens``, ``features.audio_tokens_per_second``) and, when the
        recorded text model directory no longer exists, where to find it instead.
        """
        from safetensors.torch import load_model
        from transformers import SwinConfig, SwinModel, WhisperConfig
        from transformers.models.whisper.modeling_whisper import WhisperEncoder

        d = Path(directory)
        meta_path = d / ENCODER_FILE
        if not meta_path.is_file():
            raise FileNotFoundError(f"{meta_path} not found: {d} is not a complete encoder directory")
        meta = json.loads(meta_path.read_text())
        cfg = cfg or load_config()
        arch = meta["architecture"]

        with quiet_hf_loading():
            swin = SwinModel(SwinConfig.from_dict(arch["vision"]["swin"]), add_pooling_layer=True)
            vision = VisionEncoder(swin, int(arch["vision"]["embedding_dim"]), int(arch["vision"].get("region_grid", 0)))
            load_model(vision, str(d / VISION_WEIGHTS))
            whisper = WhisperEncoder(WhisperConfig.from_dict(arch["audio"]["whisper"]))
            load_model(whisper, str(d / AUDIO_WEIGHTS))
            audio = AudioEncoder(
                whisper,
                int(arch["audio"]["sample_rate"]),
                int(arch["audio"]["window_seconds"]),
                cfg.features.audio_tokens_per_second,
            )
            text_dir = Path(arch["text"]["model_dir"])
            if not text_dir.is_dir():
                text_dir = resolve_text_model_path(cfg.encoders)
            found = directory_fingerprint(str(text_dir))
            if found != arch["text"]["fingerprint"]:
                raise ValueError(
                    f"{d}: text model at {text_dir} has fingerprint {found}, "
                    f"the encoders were built with {arch['text']['fingerprint']}"
                )
            text = load_text_encoder(text_dir.resolve(), cfg.features.text_max_tokens)
        return cls(vision.eval(), audio.eval().requires_grad_(False), text), meta
