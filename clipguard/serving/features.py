"""Cached features for the service: where a clip's tokens are (the feature table, or the Feast
online store of the feature version) and an LRU reader of its token matrices."""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from clipguard.config import Config
from clipguard.features.store import build_store, online_features
from clipguard.features.store_format import FEATURES_FILE, array_key, read_manifest, resolve_features_dir
from clipguard.models.frames import token_indices
from clipguard.serving.errors import ClipNotFoundError, IncompatibleModelError

if TYPE_CHECKING:
    import torch


log = logging.getLogger(__name__)

ClipTokens = Mapping[str, "torch.Tensor"]
"""Modality -> one clip's token matrix (L, D)."""


# --------------------------------------------------------------------------- features


@dataclass(frozen=True)
class ClipRef:
    """Where a clip's tokens are (its shard) and its clip embedding (None if not read)."""

    array_file: str
    embedding: np.ndarray | None


class FeatureSource(ABC):
    """Looks clip ids up in one feature version."""

    kind: str
    root: Path
    encoder_version: str

    @abstractmethod
    def locate(self, clip_ids: Sequence[str]) -> dict[str, ClipRef]:
        """The refs of the clips that have features (unknown ids are left out)."""

    @property
    @abstractmethod
    def size(self) -> int | None:
        """Number of clips, when known."""

    def require(self, clip_ids: Sequence[str]) -> dict[str, ClipRef]:
        """:meth:`locate`, raising :class:`ClipNotFoundError` naming every unknown id."""
        found = self.locate(clip_ids)
        missing = [c for c in clip_ids if c not in found]
        if missing:
            raise ClipNotFoundError(missing)
        return found

    def any_clip(self) -> tuple[str, ClipRef] | None:
        """Some clip of the version (to check token widths against a model), if one is known."""
        return None


class FileFeatureSource(FeatureSource):
    """Clip ids, shard refs and embeddings from the version's ``clip_features.parquet`` (read once)."""

    kind = "files"

    def __init__(self, root: Path, encoder_version: str) -> None:
        import pyarrow.parquet as pq

        self.root = root
        self.encoder_version = encoder_version
        table = pq.read_table(root / FEATURES_FILE, columns=["clip_id", "array_file", "clip_embedding"])
        ids = table.column("clip_id").to_pylist()
        self._row = {c: i for i, c in enumerate(ids)}
        self._shard = table.column("array_file").to_pylist()
        embeddings = table.column("clip_embedding").combine_chunks()
        dim = len(embeddings[0]) if ids else 0
        self._embeddings = np.asarray(embeddings.flatten(), dtype=np.float32).reshape(len(ids), dim)
        self._first = ids[0] if ids else None

    @property
    def size(self) -> int:
        return len(self._row)

    def locate(self, clip_ids: Sequence[str]) -> dict[str, ClipRef]:
        out = {}
        for c in clip_ids:
            i = self._row.get(c)
            if i is not None:
                out[c] = ClipRef(self._shard[i], self._embeddings[i])
        return out

    def any_clip(self) -> tuple[str, ClipRef] | None:
        return None if self._first is None else (self._first, self.locate([self._first])[self._first])


class FeastFeatureSource(FeatureSource):
    """Clip ids, shard refs and embeddings from the Feast online store of the version.

    The store is opened without applying definitions (``apply=False``): the feature
    pipeline registers and materializes it, and a clip materialized after start-up is served.
    """

    kind = "feast"
    VIEWS = ("clip_embedding", "clip_visual")
    FEATURES = ("clip_embedding", "encoder_version", "array_file")
    """what :meth:`locate` uses: the embedding and, from the visual view, the clip's token shard"""

    def __init__(self, root: Path, encoder_version: str, cfg: Config) -> None:
        self.root = root
        self.encoder_version = encoder_version
        self._store = build_store(root / FEATURES_FILE, Path(cfg.work_dir) / cfg.feast.dir, cfg.feast, apply=False)

    @property
    def size(self) -> None:
        return None

    def locate(self, clip_ids: Sequence[str]) -> dict[str, ClipRef]:
        out = {}
        for c, row in online_features(self._store, list(clip_ids), self.VIEWS, self.FEATURES).items():
            if row is None or row.get("array_file") is None:
                continue
            if row.get("encoder_version") not in (None, self.encoder_version):
                continue  # a row of another encoder version cannot be read from these shards
            out[c] = ClipRef(str(row["array_file"]), row.get("clip_embedding"))
        return out


def resolve_serving_features(cfg: Config, encoder_version: str | None) -> Path:
    """The feature version directory to serve for a model trained on ``encoder_version``.

    ``serving.features_dir`` (default ``<work_dir>/features``) is a version directory, or a
    root holding ``<encoder_version>/`` directories (the model's encoder version is picked;
    without one the root must hold exactly one version).

    Raises:
        FileNotFoundError: no features; IncompatibleModelError: the directory holds another
            encoder version than the model was trained on.
    """
    base = Path(cfg.serving.features_dir) if cfg.serving.features_dir else Path(cfg.work_dir) / "features"
    if not (base / FEATURES_FILE).is_file() and encoder_version and (base / encoder_version / FEATURES_FILE).is_file():
        return base / encoder_version
    root = resolve_features_dir(base)
    found = str(read_manifest(root)["encoder_version"])
    if encoder_version and found != encoder_version:
        raise IncompatibleModelError(f"the model was trained on encoder version {encoder_version!r} but {root} holds {found!r}")
    return root


def open_feature_source(root: Path, cfg: Config) -> FeatureSource:
    """The configured :class:`FeatureSource` over version directory ``root``."""
    version = str(read_manifest(root)["encoder_version"])
    if cfg.serving.feature_source == "feast":
        return FeastFeatureSource(root, version, cfg)
    return FileFeatureSource(root, version)


class TokenReader:
    """Reads clips' token matrices of ``modalities`` from the version's shards, with an LRU cache.

    Each matrix is kept as stored (float16), cut to ``limits[modality]`` uniformly spaced
    tokens (:func:`clipguard.models.frames.uniform_indices`, what the student reads anyway),
    for at most ``cache_clips`` clips.
    """

    def __init__(self, root: Path, limits: Mapping[str, int], cache_clips: int) -> None:
        self.root = root
        self.limits = dict(limits)
        self.cache_clips = cache_clips
        self._cache: OrderedDict[str, dict[str, torch.Tensor]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def cached_clip_ids(self) -> list[str]:
        """Clips in the cache, least recently used first."""
        with self._lock:
            return list(self._cache)

    def read(self, refs: Mapping[str, ClipRef]) -> dict[str, dict[str, torch.Tensor]]:
        """Tokens of every clip of ``refs`` (cached clips are not read again)."""
        from safetensors import safe_open

        out: dict[str, dict[str, torch.Tensor]] = {}
        todo: dict[str, list[str]] = {}
        with self._lock:
            for clip_id, ref in refs.items():
                hit = self._cache.get(clip_id)
                if hit is None:
                    todo.setdefault(ref.array_file, []).append(clip_id)
                else:
                    self._cache.move_to_end(clip_id)
                    out[clip_id] = hit
        for shard, clip_ids in todo.items():
            with safe_open(str(self.root / shard), framework="pt") as f:
                for clip_id in clip_ids:
                    tokens = {}
                    for modality, limit in self.limits.items():
                        x = f.get_tensor(array_key(clip_id, modality))
                        tokens[modality] = x[list(token_indices(len(x), limit, resample=False))] if len(x) > limit else x
                    out[clip_id] = tokens
        if todo and self.cache_clips:
            with self._lock:
                for clip_ids in todo.values():
                    for clip_id in clip_ids:
                        self._cache[clip_id] = out[clip_id]
                while len(self._cache) > self.cache_clips:
                    self._cache.popitem(last=False)
        return out
