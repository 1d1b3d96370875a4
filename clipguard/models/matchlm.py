"""MatchLM: the multimodal-LLM RCI teacher (MatchLM2Lite §3.2, Appendix A.2, B, D.2).

MatchLM is LLaVA-OneVision (SigLIP vision tower + 2-layer MLP projector + Qwen2 language
model, from ``transformers``) extended with audio and used as a *pair representation
extractor* rather than a generator:

* **Video.** Frames of both videos, chosen by dynamic frame allocation
  (:mod:`clipguard.models.frames`), go through LLaVA-OV's own vision tower, projector and
  2x2 bilinear pooling (``get_video_features``); each video's frame tokens are followed by
  LLaVA-OV's ``image_newline`` token.
* **Audio.** A Whisper encoder turns each video's 80-bin log-mel spectrogram into a token
  sequence that a learned saliency layer (a linear score per token, softmax, weighted sum)
  reduces to ONE token, projected by a 2-layer MLP to the LLM width (A.2).
* **Early fusion.** One interleaved sequence per pair,
  ``Prompt + "Video 1:" [Video1] + "Audio:" [Audio1] + "Video 2:" [Video2] + "Audio:" [Audio2]``
  plus an end token; the embedding rows at the ``<video>`` / ``<audio>`` placeholders are
  replaced by the projected features and the language model runs on ``inputs_embeds``.
  The prompt carries the task instruction and each video's own text.
* **Last-token classification.** The final hidden state of the last non-pad token is the
  pair representation (the embedding distilled into MatchLite, §3.4.2); a shared
  projection feeds one classifier per task, trained with the sum of the per-task
  cross-entropies (eq. 1).
* **Fine-tuning.** LoRA (r=32, alpha=64, dropout=0.05, D.2) on the Qwen2 attention and MLP
  projections via ``peft``, training only the adapters, the heads and the projectors
  (:meth:`MatchLMForPairClassification.prepare_for_lora`), or full fine-tuning.

The ``local`` profile builds a tiny model from config; the ``gpu`` profile loads LLaVA-OV
0.5B and Whisper-small from local checkpoint directories
(:meth:`MatchLMForPairClassification.from_settings`). :class:`MatchLMProcessor` turns
decoded frames, waveforms and texts into the padded tensors :meth:`forward` takes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F
from transformers import (
    LlavaOnevisionConfig,
    LlavaOnevisionForConditionalGeneration,
    LlavaOnevisionModel,
    PreTrainedConfig,
    PreTrainedTokenizerBase,
    Qwen2Config,
    SiglipVisionConfig,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperModel,
)
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from clipguard.config import TeacherConfig
from clipguard.models.frames import allocate_pair_frames
from clipguard.models.kd import IGNORE_INDEX, multitask_cross_entropy
from clipguard.models.matchlite import CONFIG_FILE, WEIGHTS_FILE, MultiTaskHead, PairClassifierOutput
from clipguard.models.tokenizer import SpecialTokenIds, special_token_ids

SAMPLE_RATE = 16_000
HOP_LENGTH = 160
N_FFT = 400
WHISPER_STATES_PER_SECOND = SAMPLE_RATE // HOP_LENGTH // 2
"""Whisper's second conv halves the 100 mel frames per second: 50 encoder states per second."""

SIGLIP_MEAN = SIGLIP_STD = 0.5
"""SigLIP pixel normalisation: ``(x / 255 - 0.5) / 0.5``."""


@dataclass(frozen=True)
class MatchLMConfig:
    """Architecture and input format of a MatchLM model (``config.json`` beside its weights).

    ``llava`` and ``audio`` are the ``transformers`` configs of the LLaVA-OneVision model and
    of the Whisper encoder; the rest describes the heads, LoRA and the pair sequence.
    """

    llava: LlavaOnevisionConfig
    audio: WhisperConfig
    tasks: dict[str, int]
    token_ids: SpecialTokenIds
    head_hidden_size: int = 64
    head_dropout: float = 0.1
    lora_r: int = 32
    lora_alpha: int = 64
    lora_dropout: float = 0.05
    lora_target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    frame_budget: int = 16
    min_frames: int = 4
    prompt: str = "Is the second video reproduced content of the first video?"
    max_text_tokens: int = 32
    audio_window_seconds: int = 20

    def __post_init__(self) -> None:
        if self.llava.vision_feature_select_strategy != "full":
            raise ValueError("MatchLM expects vision_feature_select_strategy='full' (SigLIP has no CLS token)")
        if self.audio.max_source_positions != self.audio_window_seconds * WHISPER_STATES_PER_SECOND:
            raise ValueError(
                f"Whisper max_source_positions={self.audio.max_source_positions} does not match a "
                f"{self.audio_window_seconds}-s window ({self.audio_window_seconds * WHISPER_STATES_PER_SECOND})"
            )
        object.__setattr__(self, "lora_target_modules", tuple(self.lora_target_modules))

    @classmethod
    def from_settings(cls, teacher: TeacherConfig, tasks: dict[str, int], tokenizer: PreTrainedTokenizerBase) -> MatchLMConfig:
        """The architecture ``cfg.models.teacher`` describes, for ``tokenizer``.

        With ``checkpoint_dir`` / ``audio_checkpoint_dir`` set, the LLaVA-OV / Whisper configs
        are read from those directories (only Whisper's position table is cut to the window);
        otherwise they are built from the sizes in ``teacher``. The Qwen2 vocabulary is at
        least ``len(tokenizer)``.
        """
        ids = special_token_ids(tokenizer)
        positions = teacher.audio_window_seconds * WHISPER_STATES_PER_SECOND
        if teacher.checkpoint_dir:
            llava = LlavaOnevisionConfig.from_pretrained(_existing_dir(teacher.checkpoint_dir), local_files_only=True)
        else:
            vision = SiglipVisionConfig(
                hidden_size=teacher.vision_hidden_size,
                intermediate_size=teacher.vision_intermediate_size,
                num_hidden_layers=teacher.vision_layers,
                num_attention_heads=teacher.vision_heads,
                image_size=teacher.vision_image_size,
                patch_size=teacher.vision_patch_size,
                vision_use_head=False,
            )
            text = Qwen2Config(
                hidden_size=teacher.text_hidden_size,
                intermediate_size=teacher.text_intermediate_size,
                num_hidden_layers=teacher.text_layers,
                num_attention_heads=teacher.text_heads,
                num_key_value_heads=teacher.text_kv_heads,
                vocab_size=teacher.text_vocab_size or len(tokenizer),
                max_position_embeddings=teacher.text_max_positions,
                tie_word_embeddings=True,
                pad_token_id=ids.pad,
            )
            llava = LlavaOnevisionConfig(
                vision_config=vision,
                text_config=text,
                vision_feature_select_strategy="full",
                vision_feature_layer=-1,
            )
        text_config = _sub_config(llava, "text_config")
        text_config.vocab_size = max(text_config.vocab_size, len(tokenizer))
        llava.video_token_id, llava.image_token_id = ids.video, ids.image
        if teacher.audio_checkpoint_dir:
            audio = WhisperConfig.from_pretrained(_existing_dir(teacher.audio_checkpoint_dir), local_files_only=True)
            if audio.max_source_positions < positions:
                raise ValueError(
                    f"{teacher.audio_checkpoint_dir} covers {audio.max_source_positions} positions; "
                    f"a {teacher.audio_window_seconds}-s window needs {positions}"
                )
            audio.max_source_positions = positions
        else:
            audio = WhisperConfig(
                num_mel_bins=teacher.audio_mel_bins,
                d_model=teacher.audio_d_model,
                encoder_layers=teacher.audio_layers,
                encoder_attention_heads=teacher.audio_heads,
                encoder_ffn_dim=teacher.audio_ffn_dim,
                decoder_layers=1,
                decoder_attention_heads=teacher.audio_heads,
                decoder_ffn_dim=teacher.audio_ffn_dim,
                max_source_positions=positions,
            )
        return cls(
            llava=llava,
            audio=audio,
            tasks=dict(tasks),
            token_ids=ids,
            head_hidden_size=teacher.head_hidden_size,
            head_dropout=teacher.head_dropout,
            lora_r=teacher.lora_r,
            lora_alpha=teacher.lora_alpha,
            lora_dropout=teacher.lora_dropout,
            lora_target_modules=teacher.lora_target_modules,
            frame_budget=teacher.frame_budget,
            min_frames=teacher.min_frames,
            prompt=teacher.prompt,
            max_text_tokens=teacher.max_text_tokens,
            audio_window_seconds=teacher.audio_window_seconds,
        )

    @property
    def text_config(self) -> PreTrainedConfig:
        """The Qwen2 config inside ``llava``."""
        return _sub_config(self.llava, "text_config")

    @property
    def vision_config(self) -> PreTrainedConfig:
        """The SigLIP vision config inside ``llava``."""
        return _sub_config(self.llava, "vision_config")

    @property
    def hidden_size(self) -> int:
        """Width of the language model, hence of the pair representation."""
        return int(self.text_config.hidden_size)

    @property
    def tokens_per_frame(self) -> int:
        """LLM tokens per frame: the SigLIP patch grid after LLaVA-OV's 2x2 bilinear pooling."""
        side = self.vision_config.image_size // self.vision_config.patch_size
        return math.ceil(side / 2) ** 2

    @property
    def image_size(self) -> int:
        return int(self.vision_config.image_size)

    @property
    def audio_positions(self) -> int:
        """Whisper encoder states per audio window."""
        return int(self.audio.max_source_positions)

    def to_dict(self) -> dict[str, Any]:
        return {
            "llava": self.llava.to_dict(),
            "audio": self.audio.to_dict(),
            "tasks": self.tasks,
            "token_ids": vars(self.token_ids),
            "head_hidden_size": self.head_hidden_size,
            "head_dropout": self.head_dropout,
            "lora_r": self.lora_r,
            "lora_alpha": self.lora_alpha,
            "lora_dropout": self.lora_dropout,
            "lora_target_modules": list(self.lora_target_modules),
            "frame_budget": self.frame_budget,
            "min_frames": self.min_frames,
            "prompt": self.prompt,
            "max_text_tokens": self.max_text_tokens,
            "audio_window_seconds": self.audio_window_seconds,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MatchLMConfig:
        d = dict(d)
        d["llava"] = LlavaOnevisionConfig.from_dict(d["llava"])
        d["audio"] = WhisperConfig.from_dict(d["audio"])
        d["token_ids"] = SpecialTokenIds(**d["token_ids"])
        return cls(**d)


def _sub_config(config: LlavaOnevisionConfig, name: str) -> PreTrainedConfig:
    sub = getattr(config, name)
    if not isinstance(sub, PreTrainedConfig):
        raise TypeError(f"LlavaOnevisionConfig.{name} is {type(sub).__name__}, not a config")
    return sub


def _existing_dir(path: str) -> str:
    if not Path(path).is_dir():
        raise FileNotFoundError(f"checkpoint directory {path} does not exist")
    return str(path)


def last_token_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """(B,) position of the last non-pad token of each row (any padding side)."""
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device).expand_as(attention_mask)
    last = torch.where(attention_mask.bool(), positions, -1).max(dim=1).values
    if bool((last < 0).any()):
        raise ValueError("a row of attention_mask has no tokens")
    return last


class AudioSaliencyPooling(nn.Module):
    """Learned saliency-weighted pooling of audio tokens into one token (A.2).

    A linear layer scores each token; the softmax of the scores over the real tokens weighs
    their sum. A clip without audio (all-False mask) pools to zeros.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.score = nn.Linear(dim, 1)

    def forward(self, states: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``states`` (N, P, D), optional bool ``mask`` (N, P) -> (N, D)."""
        scores = self.score(states).squeeze(-1)
        if mask is None:
            weights = scores.softmax(dim=-1)
        else:
            mask = mask.bool()
            weights = scores.masked_fill(~mask, torch.finfo(scores.dtype).min).softmax(dim=-1) * mask
        return torch.einsum("np,npd->nd", weights, states)


class AudioProjector(nn.Module):
    """Two-layer MLP from the Whisper width to the LLM width, as LLaVA-OV's vision projector (§3.2)."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(in_dim, out_dim)
        self.linear_2 = nn.Linear(out_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(F.gelu(self.linear_1(x)))


class MatchLMForPairClassification(nn.Module):
    """MatchLM: interleaved video/audio/text pair sequence -> LLM -> last token -> multi-task head."""

    def __init__(self, config: MatchLMConfig) -> None:
        super().__init__()
        self.config = config
        self.llava = LlavaOnevisionModel(config.llava)
        self.audio_encoder = WhisperEncoder(config.audio)
        self.audio_pooling = AudioSaliencyPooling(config.audio.d_model)
        self.audio_projector = AudioProjector(config.audio.d_model, config.hidden_size)
        self.head = MultiTaskHead(config.hidden_size, config.head_hidden_size, config.tasks, config.head_dropout)
        self.has_lora = False

    # -- Construction -----------------------------------------------------------------------

    @classmethod
    def from_settings(
        cls, teacher: TeacherConfig, tasks: dict[str, int], tokenizer: PreTrainedTokenizerBase
    ) -> MatchLMForPairClassification:
        """Build the model ``cfg.models.teacher`` describes, load its checkpoints, set ``finetune``.

        ``local``: random init from the sizes. ``gpu``: LLaVA-OV from ``checkpoint_dir`` and
        the Whisper encoder from ``audio_checkpoint_dir``; the new heads, saliency layer and
        audio projector start from random init. Seed with ``torch.manual_seed`` beforehand.
        """
        model = cls(MatchLMConfig.from_settings(teacher, tasks, tokenizer))
        if teacher.checkpoint_dir:
            model.load_llava_checkpoint(teacher.checkpoint_dir)
        if teacher.audio_checkpoint_dir:
            model.load_whisper_checkpoint(teacher.audio_checkpoint_dir)
        if teacher.finetune == "lora":
            model.prepare_for_lora()
        else:
            model.prepare_for_full_finetune()
        return model

    def load_llava_checkpoint(self, directory: str | Path) -> None:
        """Load LLaVA-OneVision weights (a ``LlavaOnevisionForConditionalGeneration`` checkpoint).

        Its ``lm_head`` is not used (last-token classification, not next-token prediction).
        The token embeddings are resized when the tokenizer added tokens.
        """
        loaded = LlavaOnevisionForConditionalGeneration.from_pretrained(
            _existing_dir(str(directory)), local_files_only=True, dtype=torch.float32
        ).model
        vocab = self.config.text_config.vocab_size
        if loaded.language_model.get_input_embeddings().num_embeddings != vocab:
            loaded.language_model.resize_token_embeddings(vocab)
        self.llava.load_state_dict(loaded.state_dict())

    def load_whisper_checkpoint(self, directory: str | Path) -> None:
        """Load a Whisper encoder, its position table cut to the audio window."""
        state = WhisperModel.from_pretrained(_existing_dir(str(directory)), local_files_only=True).encoder.state_dict()
        key = "embed_positions.weight"
        state[key] = state[key][: self.config.audio_positions]
        self.audio_encoder.load_state_dict(state)

    # -- Fine-tuning modes (Appendix D.2) -----------------------------------------------------

    def _inject_lora(self) -> None:
        from peft import LoraConfig, inject_adapter_in_model

        lora = LoraConfig(
            r=self.config.lora_r,
            lora_alpha=self.config.lora_alpha,
            lora_dropout=self.config.lora_dropout,
            target_modules=list(self.config.lora_target_modules),
        )
        inject_adapter_in_model(lora, self.llava.language_model)
        self.has_lora = True

    def prepare_for_lora(self) -> None:
        """Add LoRA adapters to the Qwen2 projections (once) and train only the new parts.

        Trainable afterwards: the LoRA adapters, the multi-task head, the audio saliency
        layer and projector, and LLaVA-OV's vision-language projector and ``image_newline``.
        Frozen: the Qwen2 base weights and embeddings, SigLIP and the Whisper encoder.
        """
        if not self.has_lora:
            self._inject_lora()
        for p in self.parameters():
            p.requires_grad_(False)
        for name, p in self.llava.language_model.named_parameters():
            if "lora_" in name:
                p.requires_grad_(True)
        for module in (self.head, self.audio_pooling, self.audio_projector, self.llava.multi_modal_projector):
            module.requires_grad_(True)
        self.llava.image_newline.requires_grad_(True)

    def prepare_for_full_finetune(self) -> None:
        """Train every weight (no adapters); used by the ``local`` profile, whose backbones are random."""
        if self.has_lora:
            raise RuntimeError("the model already has LoRA adapters; build a new one for full fine-tuning")
        self.requires_grad_(True)
        self.audio_encoder.embed_positions.requires_grad_(False)  # Whisper's fixed sinusoidal table

    # -- Encoders -----------------------------------------------------------------------------

    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames (N, 3, S, S) -> projected, pooled frame tokens (N, tokens_per_frame, hidden).

        Uses LLaVA-OV's ``get_video_features`` (vision tower, projector, 2x2 pooling) on all
        frames at once and drops the ``image_newline`` it appends; :meth:`embed_inputs` adds
        one newline per video instead.
        """
        n = frames.shape[0]
        features = self.llava.get_video_features(frames.unsqueeze(0)).pooler_output
        return features[0, :-1].reshape(n, self.config.tokens_per_frame, -1)

    def encode_audio(self, audio_features: torch.Tensor, audio_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Log-mel (N, mel_bins, 2 x positions) -> one projected audio token per clip (N, hidden)."""
        states = self.audio_encoder(audio_features).last_hidden_state
        return self.audio_projector(self.audio_pooling(states, audio_mask))

    def embed_inputs(
        self,
        input_ids: torch.Tensor,
        pixel_values_videos: torch.Tensor,
        frame_mask: torch.Tensor,
        audio_features: torch.Tensor,
        audio_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The LLM input embeddings with the ``<video>`` / ``<audio>`` rows replaced (early fusion)."""
        ids = self.config.token_ids
        batch = input_ids.shape[0]
        frame_mask = frame_mask.bool()
        counts = frame_mask.sum(dim=-1)  # (B, 2)
        if pixel_values_videos.shape[:3] != frame_mask.shape or frame_mask.shape[:2] != (batch, 2):
            raise ValueError(
                f"pixel_values_videos {tuple(pixel_values_videos.shape)} / frame_mask {tuple(frame_mask.shape)} "
                f"must be (B, 2, F, 3, S, S) / (B, 2, F) with B={batch}"
            )
        if bool((counts == 0).any()):
            raise ValueError("every video of a pair needs at least one frame")
        video_positions = input_ids == ids.video
        audio_positions = input_ids == ids.audio
        expected = (counts * self.config.tokens_per_frame + 1).sum(dim=-1)
        if not torch.equal(video_positions.sum(dim=-1), expected):
            raise ValueError(
                f"<video> tokens per row {video_positions.sum(dim=-1).tolist()} do not match the frames "
                f"{counts.tolist()} x {self.config.tokens_per_frame} tokens + 1 newline per video"
            )
        if not bool((audio_positions.sum(dim=-1) == 2).all()):
            raise ValueError("each pair sequence needs exactly two <audio> tokens")

        embeds = self.llava.get_input_embeddings()(input_ids)
        per_frame = self.encode_frames(pixel_values_videos[frame_mask])
        newline = self.llava.image_newline[None].to(per_frame.dtype)
        videos = per_frame.split(counts.flatten().tolist())
        video_tokens = torch.cat([torch.cat((v.flatten(0, 1), newline)) for v in videos])
        embeds = embeds.masked_scatter(video_positions[..., None], video_tokens.to(embeds.dtype))

        mask = None if audio_mask is None else audio_mask.flatten(0, 1)
        audio_tokens = self.encode_audio(audio_features.flatten(0, 1), mask)
        return embeds.masked_scatter(audio_positions[..., None], audio_tokens.to(embeds.dtype))

    # -- Forward ------------------------------------------------------------------------------

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        pixel_values_videos: torch.Tensor,
        frame_mask: torch.Tensor,
        audio_features: torch.Tensor,
        audio_mask: torch.Tensor | None = None,
        labels: dict[str, torch.Tensor] | None = None,
    ) -> PairClassifierOutput:
        """Classify a batch of pairs (build the inputs with :class:`MatchLMProcessor`).

        Args:
            input_ids, attention_mask: (B, L) interleaved pair sequences, right-padded.
            pixel_values_videos: (B, 2, F, 3, S, S) SigLIP-normalised frames of query and
                candidate, zero-padded to F frames.
            frame_mask: (B, 2, F) bool, True at real frames.
            audio_features: (B, 2, mel_bins, 2 x audio_positions) Whisper log-mel.
            audio_mask: optional (B, 2, audio_positions) bool, True at encoder states that
                cover real audio (all False: the video has no audio track).
            labels: optional task -> (B,) class ids (``-100`` = missing sub-label).
        Returns:
            logits per task, the pair representation (B, hidden) and, with labels, the loss.
        """
        embeds = self.embed_inputs(input_ids, pixel_values_videos, frame_mask, audio_features, audio_mask)
        hidden = self.llava.language_model(inputs_embeds=embeds, attention_mask=attention_mask).last_hidden_state
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        representation = hidden[rows, last_token_index(attention_mask)]
        logits = self.head(representation)
        if labels is None:
            return PairClassifierOutput(logits, representation)
        loss, per_task = multitask_cross_entropy(logits, labels)
        return PairClassifierOutput(logits, representation, loss, per_task)

    # -- Persistence --------------------------------------------------------------------------

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` (architecture + whether LoRA adapters are present) and ``model.safetensors``."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        meta = {"config": self.config.to_dict(), "has_lora": self.has_lora}
        (out / CONFIG_FILE).write_text(json.dumps(meta, indent=2))
        save_file({k: v.detach().contiguous() for k, v in self.state_dict().items()}, str(out / WEIGHTS_FILE))
        return out

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: torch.device | str = "cpu") -> MatchLMForPairClassification:
        """Rebuild a model written by :meth:`save_pretrained` (adapters included, safetensors only).

        The reloaded model is in full-fine-tuning mode when it has no adapters and in LoRA
        mode when it has; call :meth:`prepare_for_lora` / freeze it as the next step needs.
        """
        path = Path(directory)
        meta = json.loads((path / CONFIG_FILE).read_text())
        model = cls(MatchLMConfig.from_dict(meta["config"]))
        if meta["has_lora"]:
            model.prepare_for_lora()
        model.load_state_dict(load_file(str(path / WEIGHTS_FILE), device=str(device)))
        return model.to(device)


# -- Inputs -----------------------------------------------------------------------------------


@dataclass
class PairExample:
    """One (query, candidate) pair as decoded media.

    Frames are RGB uint8 (F, H, W, 3) sampled at 1 fps (all of them: the processor
    allocates the frame budget); audio is mono float32 at 16 kHz (``None``: no audio track;
    only the first ``audio_window_seconds`` are used); labels map task -> class id.
    """

    query_frames: np.ndarray | torch.Tensor
    candidate_frames: np.ndarray | torch.Tensor
    query_audio: np.ndarray | None
    candidate_audio: np.ndarray | None
    query_text: str = ""
    candidate_text: str = ""
    labels: dict[str, int] = field(default_factory=dict)


class MatchLMProcessor:
    """Turns :class:`PairExample` s into the padded batch :meth:`MatchLMForPairClassification.forward` takes.

    Frames: dynamic allocation over the pair (A.2), resize to the SigLIP size, SigLIP
    normalisation. Audio: Whisper log-mel of a fixed window and the mask of the encoder
    states that cover real audio. Text: the interleaved token sequence (§3.2).
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, config: MatchLMConfig) -> None:
        self.tokenizer = tokenizer
        self.config = config
        self.feature_extractor = WhisperFeatureExtractor(
            feature_size=int(config.audio.num_mel_bins),
            sampling_rate=SAMPLE_RATE,
            hop_length=HOP_LENGTH,
            chunk_length=config.audio_window_seconds,
            n_fft=N_FFT,
        )

    def _text_ids(self, text: str, limit: int | None = None) -> list[int]:
        if limit is None:
            return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        if limit == 0 or not text:
            return []
        return list(self.tokenizer(text, add_special_tokens=False, truncation=True, max_length=limit)["input_ids"])

    def sequence_ids(self, query_frames: int, candidate_frames: int, query_text: str = "", candidate_text: str = "") -> list[int]:
        """The token ids of one pair sequence (§3.2, A.2)::

        Prompt [Text 1: ... Text 2: ...] Video 1: <video>*(n1*t+1) Audio: <audio>
                                         Video 2: <video>*(n2*t+1) Audio: <audio> <end>
        """
        ids = self.config.token_ids
        per_video = self.config.tokens_per_frame
        seq = self._text_ids(self.config.prompt)
        if self.config.max_text_tokens > 0:
            seq += self._text_ids(" Text 1:") + self._text_ids(query_text, self.config.max_text_tokens)
            seq += self._text_ids(" Text 2:") + self._text_ids(candidate_text, self.config.max_text_tokens)
        for label, frames in ((" Video 1:", query_frames), (" Video 2:", candidate_frames)):
            seq += self._text_ids(label) + [ids.video] * (frames * per_video + 1)
            seq += self._text_ids(" Audio:") + [ids.audio]
        return seq + [ids.end]

    def pad_batch(
        self, sequences: Sequence[Sequence[int]], videos: Sequence[tuple[torch.Tensor, torch.Tensor]]
    ) -> dict[str, torch.Tensor]:
        """Token sequences and (query, candidate) frame stacks of a batch of pairs, padded:
        ``input_ids`` / ``attention_mask`` (B, L) and ``pixel_values_videos`` (B, 2, T, 3, S, S)
        with its ``frame_mask`` (B, 2, T), True at real frames."""
        batch, length = len(sequences), max(len(s) for s in sequences)
        input_ids = torch.full((batch, length), self.config.token_ids.pad, dtype=torch.long)
        attention_mask = torch.zeros((batch, length), dtype=torch.long)
        for i, seq in enumerate(sequences):
            input_ids[i, : len(seq)] = torch.tensor(seq)
            attention_mask[i, : len(seq)] = 1
        max_frames = max(v.shape[0] for pair in videos for v in pair)
        size = self.config.image_size
        pixels = torch.zeros(batch, 2, max_frames, 3, size, size)
        frame_mask = torch.zeros(batch, 2, max_frames, dtype=torch.bool)
        for i, pair in enumerate(videos):
            for j, v in enumerate(pair):
                pixels[i, j, : v.shape[0]] = v
                frame_mask[i, j, : v.shape[0]] = True
        return {"input_ids": input_ids, "attention_mask": attention_mask, "pixel_values_videos": pixels, "frame_mask": frame_mask}

    def frames_to_pixels(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 (F, H, W, 3) -> SigLIP-normalised float (F, 3, S, S)."""
        x = torch.as_tensor(frames)
        if x.ndim != 4 or x.shape[-1] != 3:
            raise ValueError(f"expected F x H x W x 3 frames, got shape {tuple(x.shape)}")
        x = x.permute(0, 3, 1, 2).float().div(255.0)
        size = self.config.image_size
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        return (x - SIGLIP_MEAN) / SIGLIP_STD

    def audio_to_features(self, audio: np.ndarray | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Waveform -> (log-mel (mel_bins, 2 x positions), state mask (positions,)); ``None`` -> silence, all False."""
        window = self.config.audio_window_seconds * SAMPLE_RATE
        wave = np.zeros(0, np.float32) if audio is None else np.asarray(audio, np.float32)[:window]
        mel = self.feature_extractor([wave], sampling_rate=SAMPLE_RATE, return_tensors="np", padding="max_length")[
            "input_features"
        ][0]
        positions = self.config.audio_positions
        valid = min(positions, math.ceil(len(wave) / SAMPLE_RATE * WHISPER_STATES_PER_SECOND))
        mask = torch.zeros(positions, dtype=torch.bool)
        mask[:valid] = True
        return torch.from_numpy(np.asarray(mel, np.float32)), mask

    def __call__(self, examples: Sequence[PairExample]) -> dict[str, Any]:
        """Collate pairs into ``forward``'s keyword arguments (``labels`` only if any example has them)."""
        if not examples:
            raise ValueError("no examples")
        sequences, videos, mels, audio_masks = [], [], [], []
        for ex in examples:
            keep = allocate_pair_frames(
                len(ex.query_frames), len(ex.candidate_frames), self.config.frame_budget, self.config.min_frames
            )
            if 0 in keep.counts:
                raise ValueError("both videos of a pair need at least one frame")
            videos.append(
                (
                    self.frames_to_pixels(ex.query_frames[list(keep.query)]),
                    self.frames_to_pixels(ex.candidate_frames[list(keep.candidate)]),
                )
            )
            sequences.append(self.sequence_ids(*keep.counts, ex.query_text, ex.candidate_text))
            (mq, aq), (mc, ac) = self.audio_to_features(ex.query_audio), self.audio_to_features(ex.candidate_audio)
            mels.append(torch.stack((mq, mc)))
            audio_masks.append(torch.stack((aq, ac)))

        out: dict[str, Any] = {
            **self.pad_batch(sequences, videos),
            "audio_features": torch.stack(mels),
            "audio_mask": torch.stack(audio_masks),
        }
        tasks = sorted({t for ex in examples for t in ex.labels})
        if tasks:
            out["labels"] = {
                t: torch.tensor([ex.labels.get(t, IGNORE_INDEX) for ex in examples], dtype=torch.long) for t in tasks
            }
        return out
