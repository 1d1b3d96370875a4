"""The on-disk contract of extracted features (written by :mod:`clipguard.features.extract`).

One directory per encoder version::

    <out_dir>/<encoder_version>/
        features.json                 encoder version, extraction settings, counts
        clip_features.parquet         one row per clip (schema: CLIP_FEATURES_SCHEMA)
        features_quarantine.parquet   clips that could not be decoded (QUARANTINE_SCHEMA)
        arrays/shard-00000.safetensors
        ...

A shard holds the token matrices of a group of clips under the keys
``"{clip_id}/visual"`` (T x Dv, one token per sampled frame), ``"{clip_id}/audio"``
(S_a x D_a, pooled Whisper states, S_a = 0 without audio) and ``"{clip_id}/text"``
(S_t x 384 MiniLM token states), all float16. The Parquet row of a clip names its shard
(``array_file``, relative to the version directory) and carries the pooled vectors and the
128-d clip embedding as float32 lists.

:class:`TokenStore` / :func:`load_tokens` read the tokens of a batch of clips as padded
tensors with boolean masks — what the student model and the Feast layer consume.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

FEATURES_FILE = "clip_features.parquet"
QUARANTINE_FILE = "features_quarantine.parquet"
MANIFEST_FILE = "features.json"
ARRAYS_DIR = "arrays"
PARTS_DIR = "parts"
"""per-shard Parquet rows, merged into FEATURES_FILE at the end of a run (the resume log)"""

MODALITIES: tuple[str, ...] = ("visual", "audio", "text")

CLIP_FEATURES_SCHEMA = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("video_uri", pa.string(), nullable=False),
        pa.field("event_timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("created_timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("encoder_version", pa.string(), nullable=False),
        pa.field("data_version", pa.string(), nullable=False),
        pa.field("visual_pooled", pa.list_(pa.float32()), nullable=False),
        pa.field("audio_pooled", pa.list_(pa.float32()), nullable=False),
        pa.field("text_pooled", pa.list_(pa.float32()), nullable=False),
        pa.field("clip_embedding", pa.list_(pa.float32()), nullable=False),
        pa.field("n_frames", pa.int32(), nullable=False),
        pa.field("n_audio_tokens", pa.int32(), nullable=False),
        pa.field("n_text_tokens", pa.int32(), nullable=False),
        pa.field("has_audio", pa.bool_(), nullable=False),
        pa.field("array_file", pa.string(), nullable=False),
    ]
)
"""``clip_features.parquet``: ``event_timestamp`` is the clip's own publication time (the
Feast event time); ``created_timestamp`` the wall-clock time the row was extracted."""

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("video_uri", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("message", pa.string(), nullable=False),
        pa.field("file_size", pa.int64(), nullable=True),
        pa.field("file_mtime_ns", pa.int64(), nullable=True),
        pa.field("encoder_version", pa.string(), nullable=False),
        pa.field("created_timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)
"""``features_quarantine.parquet``: ``reason`` is a code of ``clipguard.data.schema.REASONS``;
the file's size/mtime let a later run retry a clip whose media changed."""


def array_key(clip_id: str, modality: str) -> str:
    """The safetensors key of a clip's token matrix."""
    return f"{clip_id}/{modality}"


def shard_name(index: int) -> str:
    """Relative path of array shard ``index``."""
    return f"{ARRAYS_DIR}/shard-{index:05d}.safetensors"


def resolve_features_dir(path: str | Path) -> Path:
    """The version directory holding ``clip_features.parquet``.

    ``path`` is that directory itself, or an extraction ``out_dir`` holding exactly one
    version directory (with several, name the version).
    """
    p = Path(path)
    if (p / FEATURES_FILE).is_file():
        return p
    versions = sorted(d for d in p.glob("*") if (d / FEATURES_FILE).is_file()) if p.is_dir() else []
    if len(versions) == 1:
        return versions[0]
    if not versions:
        raise FileNotFoundError(f"no {FEATURES_FILE} in {p} or its sub-directories: extract features first")
    raise ValueError(f"{p} holds several feature versions ({', '.join(d.name for d in versions)}): pass one of them")


def read_manifest(features_dir: str | Path) -> dict:
    """``features.json`` of a version directory."""
    return json.loads((resolve_features_dir(features_dir) / MANIFEST_FILE).read_text())


def read_clip_features(features_dir: str | Path, columns: Sequence[str] | None = None):
    """``clip_features.parquet`` of a version directory as a pandas DataFrame."""
    import pandas as pd

    return pd.read_parquet(resolve_features_dir(features_dir) / FEATURES_FILE, columns=list(columns) if columns else None)


@dataclass(frozen=True)
class TokenBatch:
    """Padded token matrices of a batch of clips, in the requested order.

    For each loaded modality ``m``: ``tokens[m]`` is B x L_m x D_m (zero padding) and
    ``masks[m]`` is B x L_m, True on real tokens. ``L_m`` is the longest sequence in the
    batch (at least 1), so a clip without tokens (e.g. no audio) has an all-False mask row:
    guard masked means/softmaxes against it.
    """

    clip_ids: list[str]
    tokens: dict
    masks: dict

    def lengths(self, modality: str):
        """Number of real tokens per clip (B,)."""
        return self.masks[modality].sum(dim=1)


class TokenStore:
    """Random access to the token shards of one feature version."""

    def __init__(self, features_dir: str | Path) -> None:
        import pyarrow.parquet as pq

        self.root = resolve_features_dir(features_dir)
        table = pq.read_table(self.root / FEATURES_FILE, columns=["clip_id", "array_file"])
        self._shard_of = dict(zip(table.column("clip_id").to_pylist(), table.column("array_file").to_pylist()))

    def __contains__(self, clip_id: object) -> bool:
        return clip_id in self._shard_of

    def __len__(self) -> int:
        return len(self._shard_of)

    @property
    def clip_ids(self) -> list[str]:
        return list(self._shard_of)

    def load(self, clip_ids: Iterable[str], modalities: Sequence[str] = MODALITIES, dtype=None) -> TokenBatch:
        """Tokens of ``clip_ids`` (any order, duplicates allowed) as a :class:`TokenBatch`.

        ``dtype`` defaults to float32 (stored values are float16).
        """
        import torch
        from safetensors import safe_open

        ids = list(clip_ids)
        unknown = [c for c in ids if c not in self._shard_of]
        if unknown:
            raise KeyError(f"{len(unknown)} clip(s) have no features in {self.root}: {unknown[:5]}")
        bad = [m for m in modalities if m not in MODALITIES]
        if bad:
            raise ValueError(f"unknown modalities {bad} (known: {MODALITIES})")
        dtype = dtype or torch.float32
        by_shard: dict[str, list[int]] = defaultdict(list)
        for i, c in enumerate(ids):
            by_shard[self._shard_of[c]].append(i)
        found: dict[str, list] = {m: [None] * len(ids) for m in modalities}
        for shard, rows in by_shard.items():
            with safe_open(str(self.root / shard), framework="pt") as f:
                for i in rows:
                    for m in modalities:
                        found[m][i] = f.get_tensor(array_key(ids[i], m))
        tokens, masks = {}, {}
        for m in modalities:
            seqs = found[m]
            dim = seqs[0].shape[1] if seqs else 0
            length = max([1] + [len(s) for s in seqs])
            out = torch.zeros(len(ids), length, dim, dtype=dtype)
            mask = torch.zeros(len(ids), length, dtype=torch.bool)
            for i, s in enumerate(seqs):
                out[i, : len(s)] = s.to(dtype)
                mask[i, : len(s)] = True
            tokens[m], masks[m] = out, mask
        return TokenBatch(ids, tokens, masks)


def load_tokens(
    features_dir: str | Path, clip_ids: Iterable[str], modalities: Sequence[str] = MODALITIES, dtype=None
) -> TokenBatch:
    """One-shot :meth:`TokenStore.load` (build a :class:`TokenStore` to read many batches)."""
    return TokenStore(features_dir).load(clip_ids, modalities, dtype)
