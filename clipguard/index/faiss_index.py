"""FAISS indexes over clip embeddings: HNSW (default) or IVF-PQ, sharded, versioned on disk.

The 128-d ``clip_embedding`` of every clip (:mod:`clipguard.features.store_format`) is
L2-normalised, so inner product is cosine similarity (``METRIC_INNER_PRODUCT``).

* ``hnsw``: ``IndexHNSWFlat`` (M = ``hnsw_m`` = 32, ``efConstruction`` = 200) wrapped in
  ``IndexIDMap2`` so that search returns global row ids; ~0.8 KB/vector. On 1M vectors,
  efConstruction 80 leaves recall@10 at 0.95 for efSearch 32 (0.98 needs efSearch ~64, below
  5k queries/s); 200 reaches 0.998 at efSearch 32 for 2.4x the build time
  (``benchmarks/bench_index.py``).
* ``ivfpq``: ``[OPQ{m},]IVF{nlist},PQ{m}x{nbits}`` from ``faiss.index_factory``: ``m`` bytes
  of code plus the 8-byte id per vector, for 100M+ collections. Trained once (on up to
  ``train_size`` vectors of the first shard); every shard is a copy of the trained, empty
  index, so all shards share the quantisers.

A collection is cut into shards of ``shard_size`` vectors, one FAISS index each (the unit
a cluster builds in parallel, and of resume). :meth:`ClipIndex.search` searches every shard
and merges the per-shard top-k. Row ``r`` of the collection has FAISS id ``r``; the clip ids
are stored in row order in ``clip_ids.parquet``.

On disk (``<out_dir>/<index_version>/``, written by :func:`build_index`)::

    index.json          the sidecar: version, kind, metric, params, dimension, vector count,
                        encoder/data versions of the features, shard files and digests
    clip_ids.parquet    clip_id per row (the FAISS id is the row number)
    shard-00000.faiss   faiss.write_index of each shard
    trained.faiss       (ivfpq) the trained empty index shards are copied from

The index version hashes the encoder version, the data versions and clip ids of the
features, and the build parameters; a complete version is never rebuilt, and an
interrupted build keeps the shards already written (each is written atomically).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

import numpy as np

from clipguard.config import Config, IndexKind, IndexParamsConfig
from clipguard.core.io import atomic_write, config_hash, remove_stale_tmp, write_json
from clipguard.features.store_format import FEATURES_FILE, resolve_features_dir

if TYPE_CHECKING:
    import faiss

__all__ = [
    "ClipIndex",
    "IndexBuildResult",
    "IndexIntegrityError",
    "IndexParams",
    "SearchResult",
    "build_index",
    "build_index_from_vectors",
    "index_version",
    "latest_index_dir",
    "load_index",
    "merge_topk",
    "normalize",
    "progress_bar",
    "search",
]

log = logging.getLogger(__name__)

INDEX_FILE = "index.json"
IDS_FILE = "clip_ids.parquet"
TRAINED_FILE = "trained.faiss"
FORMAT = 1
METRIC = "inner_product"
ADD_CHUNK = 65_536
"""vectors added per FAISS call while building (the progress bar's step)"""

Kind = IndexKind
KINDS: tuple[str, ...] = get_args(IndexKind)
SEARCH_TIME_PARAMS = ("ef_search", "nprobe", "refine_k_factor")
"""parameters that only change search, not the built index (not part of the version)"""


class IndexIntegrityError(ValueError):
    """An index directory is incomplete, inconsistent, or does not match its use."""


def shard_file(index: int) -> str:
    """File name of shard ``index``."""
    return f"shard-{index:05d}.faiss"


class IndexParams(IndexParamsConfig):
    """How an index is built (and its default search settings): the fields of
    :class:`clipguard.config.IndexParamsConfig` (defined there once), with the index's methods."""

    @classmethod
    def from_config(cls, index: IndexParamsConfig, **overrides: Any) -> IndexParams:
        """The parameters of ``cfg.index`` (``overrides`` that are not None win)."""
        values = {f: getattr(index, f) for f in IndexParamsConfig.model_fields}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def build_spec(self) -> dict[str, Any]:
        """The parameters that determine the built index (hashed into its version)."""
        spec = {k: v for k, v in self.model_dump().items() if k not in SEARCH_TIME_PARAMS}
        if self.kind == "hnsw":
            for k in ("ivf_nlist", "pq_m", "pq_nbits", "opq", "train_size", "refine"):
                spec.pop(k)
        else:
            for k in ("hnsw_m", "ef_construction"):
                spec.pop(k)
        return spec

    def factory_string(self, dim: int, n_train: int) -> str:
        """The ``faiss.index_factory`` description of an IVF-PQ index for ``n_train`` training vectors."""
        if dim % self.pq_m:
            raise ValueError(f"pq_m={self.pq_m} must divide the vector dimension {dim}")
        nlist = self.effective_nlist(n_train)
        opq = f"OPQ{self.pq_m}," if self.opq else ""
        refine = {"none": "", "sqfp16": ",Refine(SQfp16)", "flat": ",RFlat"}[self.refine]
        return f"{opq}IVF{nlist},PQ{self.pq_m}x{self.pq_nbits}{refine}"

    def effective_nlist(self, n_train: int) -> int:
        """``ivf_nlist``, capped so that each list gets >= 39 training vectors (FAISS's minimum)."""
        return max(1, min(self.ivf_nlist, n_train // 39))


@dataclass(frozen=True)
class SearchResult:
    """Top-k neighbours of each query: ``rows`` (n, k) global row ids (-1: none), ``similarities``
    (n, k) cosine similarities (-inf where there is no neighbour), best first."""

    similarities: np.ndarray
    rows: np.ndarray
    clip_ids: list[list[str]]
    """clip ids of ``rows`` per query (missing neighbours left out)"""


def normalize(vectors: np.ndarray) -> np.ndarray:
    """A float32, C-contiguous, L2-normalised copy of ``vectors`` (n, d); zero rows stay zero."""
    import faiss

    x = np.array(vectors, dtype=np.float32, order="C", copy=True)
    if x.ndim != 2:
        raise ValueError(f"vectors must be a 2-D array (n, d), got shape {x.shape}")
    if not np.isfinite(x).all():
        bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
        raise ValueError(f"{len(bad)} vector(s) contain NaN or inf (rows {bad[:5].tolist()})")
    faiss.normalize_L2(x)
    return x


@contextmanager
def faiss_threads(threads: int | None) -> Iterator[None]:
    """Run FAISS with ``threads`` OpenMP threads inside the block (None: leave as is)."""
    import faiss

    if threads is None:
        yield
        return
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def train_ivfpq(sample: np.ndarray, params: IndexParams) -> faiss.Index:
    """An empty IVF-PQ index trained on ``sample`` (normalised vectors)."""
    import faiss

    n, dim = sample.shape
    if n < 2**params.pq_nbits:
        raise ValueError(
            f"IVF-PQ needs at least 2**pq_nbits = {2**params.pq_nbits} training vectors, got {n}: "
            "use the hnsw kind for a collection this small"
        )
    index = faiss.index_factory(dim, params.factory_string(dim, n), faiss.METRIC_INNER_PRODUCT)
    index.train(sample)
    return index


def new_shard(dim: int, params: IndexParams, trained: bytes | None = None) -> faiss.Index:
    """An empty shard index: HNSW in an ``IndexIDMap2``, or a copy of the ``trained`` IVF-PQ."""
    import faiss

    if params.kind == "hnsw":
        hnsw = faiss.IndexHNSWFlat(dim, params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = params.ef_construction
        return faiss.IndexIDMap2(hnsw)
    if trained is None:
        raise ValueError("an IVF-PQ shard needs the trained index (train_ivfpq)")
    index = faiss.deserialize_index(np.frombuffer(trained, dtype=np.uint8))
    # IndexRefine numbers its vectors itself (no add_with_ids): an IndexIDMap (8 bytes/vector) keeps the rows
    return faiss.IndexIDMap(index) if params.refine != "none" else index


def add_vectors(index: faiss.Index, vectors: np.ndarray, rows: np.ndarray, on_chunk: Any = None) -> None:
    """Add normalised ``vectors`` with their global ``rows`` as ids, ``ADD_CHUNK`` at a time."""
    for start in range(0, len(vectors), ADD_CHUNK):
        chunk = slice(start, start + ADD_CHUNK)
        index.add_with_ids(vectors[chunk], rows[chunk].astype(np.int64))
        if on_chunk is not None:
            on_chunk(len(vectors[chunk]))


def search_parameters(
    params: IndexParams, ef_search: int | None = None, nprobe: int | None = None, refine_k_factor: float | None = None
) -> Any:
    """Per-call FAISS search parameters (no global state is changed, so searches may run concurrently)."""
    import faiss

    if params.kind == "hnsw":
        return faiss.SearchParametersHNSW(efSearch=int(ef_search or params.ef_search))  # type: ignore[attr-defined]
    ivf = faiss.SearchParametersIVF(nprobe=int(nprobe or params.nprobe))  # type: ignore[call-arg]
    if params.refine == "none":
        return ivf
    return faiss.IndexRefineSearchParameters(  # type: ignore[call-arg]
        k_factor=float(refine_k_factor or params.refine_k_factor), base_index_params=ivf
    )


def merge_topk(similarities: Sequence[np.ndarray], rows: Sequence[np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Merge per-shard top-k lists (n, k_i) into the global top-k (n, k), best first."""
    sims = np.concatenate([np.asarray(s, dtype=np.float32) for s in similarities], axis=1)
    ids = np.concatenate([np.asarray(r, dtype=np.int64) for r in rows], axis=1)
    sims = np.where(ids < 0, -np.inf, sims).astype(np.float32)
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, order, axis=1), np.take_along_axis(ids, order, axis=1)


@dataclass
class ClipIndex:
    """A (possibly sharded) FAISS index over clip embeddings, with its clip ids and sidecar."""

    shards: list[Any]
    clip_ids: np.ndarray
    """clip id of each global row (object array)"""
    params: IndexParams
    meta: dict[str, Any] = field(default_factory=dict)
    """the sidecar fields (version, lineage, shard files, ...)"""
    _search_params: dict[tuple[int | None, int | None, float | None], Any] = field(default_factory=dict, init=False, repr=False)
    _sizes: list[int] = field(default_factory=list, init=False, repr=False)

    @property
    def dim(self) -> int:
        return int(self.meta["dim"]) if "dim" in self.meta else int(self.shards[0].d)

    @property
    def n_vectors(self) -> int:
        return int(sum(s.ntotal for s in self.shards))

    @property
    def version(self) -> str | None:
        return self.meta.get("version")

    @property
    def encoder_version(self) -> str | None:
        return self.meta.get("encoder_version")

    def search(
        self,
        vectors: np.ndarray,
        k: int,
        ef_search: int | None = None,
        nprobe: int | None = None,
        refine_k_factor: float | None = None,
    ) -> SearchResult:
        """The ``k`` most cosine-similar clips of each query vector (queries are normalised here).
        The search settings default to the index's parameters."""
        if k < 1:
            raise ValueError("k must be >= 1")
        x = normalize(np.atleast_2d(vectors))
        if x.shape[1] != self.dim:
            raise ValueError(f"query vectors have dimension {x.shape[1]}, the index {self.dim}")
        key = (ef_search, nprobe, refine_k_factor)
        sp = self._search_params.get(key)
        if sp is None:  # SWIG parameter objects are immutable here: build each setting once
            sp = self._search_params[key] = search_parameters(self.params, ef_search, nprobe, refine_k_factor)
        if len(self._sizes) != len(self.shards):  # SWIG attribute reads are slow: read the sizes once
            self._sizes = [int(s.ntotal) for s in self.shards]
        found = [s.search(x, min(k, n), params=sp) for s, n in zip(self.shards, self._sizes) if n > 0]
        if not found:
            raise IndexIntegrityError("the index holds no vectors")
        if len(found) == 1:  # FAISS returns each shard's hits best first
            sims, rows = found[0]
            if (rows < 0).any():
                sims = np.where(rows < 0, -np.inf, sims).astype(np.float32)
        else:
            sims, rows = merge_topk([f[0] for f in found], [f[1] for f in found], k)
        if sims.shape[1] < k:  # fewer vectors than k in the whole index
            pad = k - sims.shape[1]
            sims = np.pad(sims, ((0, 0), (0, pad)), constant_values=-np.inf)
            rows = np.pad(rows, ((0, 0), (0, pad)), constant_values=-1)
        ids = [[str(self.clip_ids[r]) for r in row if r >= 0] for row in rows.tolist()]
        return SearchResult(sims, rows, ids)

    def serialized_bytes(self) -> int:
        """Bytes of the serialized FAISS shards (what ``faiss.write_index`` writes)."""
        import faiss

        return int(sum(faiss.serialize_index(s).nbytes for s in self.shards))

    def bytes_per_vector(self) -> float:
        """Serialized index bytes per vector (shards only; the clip-id file is not counted)."""
        return self.serialized_bytes() / max(1, self.n_vectors)

    def resident_bytes_per_vector(self) -> float:
        """Bytes per vector that stay in memory once loaded: all of it, except the vectors an
        IVF-PQ ``refine`` index keeps for re-scoring (memory-mapped by :meth:`load`)."""
        import faiss

        total = self.serialized_bytes()
        for s in self.shards:
            index = faiss.downcast_index(s)
            if isinstance(index, faiss.IndexIDMap):
                index = faiss.downcast_index(index.index)
            if isinstance(index, faiss.IndexRefine):
                kept = faiss.downcast_index(index.refine_index)
                total -= int(kept.ntotal) * int(kept.sa_code_size())
        return total / max(1, self.n_vectors)

    def save(self, directory: str | Path) -> Path:
        """Write shards, clip ids and the sidecar (last) into ``directory``."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        shards = []
        first = 0
        for i, s in enumerate(self.shards):
            shards.append(_save_shard(d, i, s, first))
            first += int(s.ntotal)
        _write_ids(d, self.clip_ids)
        _write_sidecar(d, self.params, {**self.meta, "shards": shards}, self.dim, self.n_vectors)
        self.meta = json.loads((d / INDEX_FILE).read_text())
        return d

    @classmethod
    def load(cls, directory: str | Path, verify: bool = True) -> ClipIndex:
        """Read an index directory; ``verify`` checks each shard's SHA-256 against the sidecar.

        Raises:
            FileNotFoundError: no sidecar (not a complete index).
            IndexIntegrityError: missing, altered or inconsistent shards / clip ids.
        """
        import faiss
        import pyarrow.parquet as pq

        d = Path(directory)
        sidecar = d / INDEX_FILE
        if not sidecar.is_file():
            raise FileNotFoundError(f"{sidecar} not found: {d} is not a complete index (build it with build_index)")
        meta = json.loads(sidecar.read_text())
        if meta.get("format") != FORMAT:
            raise IndexIntegrityError(f"{sidecar}: unsupported index format {meta.get('format')!r}")
        params = IndexParams(**meta["params"])
        shards = []
        for s in meta["shards"]:
            path = d / s["file"]
            if not path.is_file():
                raise IndexIntegrityError(f"{d}: shard {s['file']} is missing")
            if verify and _sha256(path) != s["sha256"]:
                raise IndexIntegrityError(f"{d}: shard {s['file']} does not match its recorded SHA-256 (corrupt or altered)")
            # memory-map the re-scoring vectors of an IVF-PQ refine index (IndexFlatCodes): they stay on disk
            index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC if params.refine != "none" else 0)
            if index.ntotal != s["n_vectors"]:
                raise IndexIntegrityError(
                    f"{d}: shard {s['file']} holds {index.ntotal} vectors, the sidecar says {s['n_vectors']}"
                )
            shards.append(index)
        ids = pq.read_table(d / IDS_FILE, columns=["clip_id"]).column("clip_id").to_numpy(zero_copy_only=False)
        total = sum(int(s.ntotal) for s in shards)
        if len(ids) != total or total != meta["n_vectors"]:
            raise IndexIntegrityError(f"{d}: {len(ids)} clip ids for {total} vectors (sidecar: {meta['n_vectors']})")
        return cls(shards, ids.astype(object), params, meta)


def search(index: ClipIndex, vectors: np.ndarray, k: int) -> SearchResult:
    """:meth:`ClipIndex.search` with the index's default search settings."""
    return index.search(vectors, k)


def load_index(directory: str | Path, verify: bool = True) -> ClipIndex:
    """:meth:`ClipIndex.load`."""
    return ClipIndex.load(directory, verify=verify)


def latest_index_dir(cfg: Config, root: str | Path | None = None) -> Path:
    """The most recently built complete index under ``root`` (default ``<work_dir>/<cfg.index.dir>``).

    Raises:
        FileNotFoundError: no complete index there.
    """
    base = Path(root) if root is not None else Path(cfg.work_dir) / cfg.index.dir
    found = []
    for sidecar in base.glob(f"*/{INDEX_FILE}"):
        created = json.loads(sidecar.read_text()).get("created_at", "")
        found.append((created, sidecar.parent.name, sidecar.parent))
    if not found:
        raise FileNotFoundError(f"no index under {base}: build one first (clipguard.index.build_index)")
    return max(found)[2]


def build_index_from_vectors(
    vectors: np.ndarray,
    clip_ids: Sequence[str],
    params: IndexParams,
    meta: dict[str, Any] | None = None,
    threads: int | None = None,
    progress: bool = False,
) -> ClipIndex:
    """An in-memory :class:`ClipIndex` over ``vectors`` (n, d), sharded by ``params.shard_size``."""
    x = normalize(vectors)
    ids = np.asarray(list(clip_ids), dtype=object)
    if len(ids) != len(x):
        raise ValueError(f"{len(ids)} clip ids for {len(x)} vectors")
    _check_unique(ids)
    n, dim = x.shape
    if n == 0:
        raise ValueError("cannot build an index without vectors")
    with faiss_threads(threads), progress_bar(progress, n, f"index ({params.kind})") as advance:
        trained = _trained_bytes(_train_sample(x[: params.shard_size], params), params) if params.kind == "ivfpq" else None
        shards = []
        for start in range(0, n, params.shard_size):
            stop = min(n, start + params.shard_size)
            shard = new_shard(dim, params, trained)
            add_vectors(shard, x[start:stop], np.arange(start, stop), advance)
            shards.append(shard)
    return ClipIndex(shards, ids, params, dict(meta or {}, dim=dim, n_vectors=n))


@dataclass(frozen=True)
class IndexBuildResult:
    """Where an index was built and what it holds."""

    index_dir: Path
    version: str
    kind: str
    n_vectors: int
    n_shards: int
    dim: int
    encoder_version: str
    bytes_per_vector: float
    seconds: float
    skipped: bool
    """the version was complete already: nothing was built"""
    shards_built: int

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["index_dir"] = str(self.index_dir)
        return d


def index_version(encoder_version: str, data_versions: Sequence[str], params: IndexParams, clip_ids_digest: str) -> str:
    """``i`` + a short hash of what determines the index content."""
    spec = {
        "encoder_version": encoder_version,
        "data_versions": sorted(set(data_versions)),
        "clip_ids": clip_ids_digest,
        "params": params.build_spec(),
        "metric": METRIC,
    }
    return "i" + config_hash(spec)


def build_index(
    features_dir: str | Path,
    cfg: Config,
    out_dir: str | Path | None = None,
    kind: Kind | None = None,
    clip_ids: Sequence[str] | None = None,
    progress: bool = True,
) -> IndexBuildResult:
    """Build (or find) the index of the clip embeddings of ``features_dir``.

    Args:
        features_dir: a feature version directory (or an extraction ``out_dir`` with one version).
        cfg: ``cfg.index`` gives the parameters; ``cfg.work_dir`` the default output root.
        out_dir: output root (default ``<work_dir>/<cfg.index.dir>``); the index lands in
            ``<out_dir>/<index_version>/``.
        kind: ``hnsw`` or ``ivfpq`` (default ``cfg.index.kind``).
        clip_ids: index only these clips (e.g. a curated violation bank); default all.
        progress: show a progress bar.

    Embeddings are read from the Parquet one shard at a time, so memory holds one shard.

    Raises:
        FileNotFoundError: no features; KeyError: requested clips without features;
        ValueError: inconsistent embeddings (dimension, NaN/inf, mixed encoder versions).
    """
    import pyarrow.parquet as pq

    t0 = time.perf_counter()
    params = IndexParams.from_config(cfg.index, kind=kind)
    features = resolve_features_dir(features_dir)
    parquet = pq.ParquetFile(features / FEATURES_FILE)
    lineage = parquet.read(columns=["clip_id", "encoder_version", "data_version"])
    all_ids = np.asarray(lineage.column("clip_id").to_pylist(), dtype=object)
    keep = _keep_mask(all_ids, clip_ids, features)
    ids = all_ids[keep]
    if len(ids) == 0:
        raise ValueError(f"{features}: no clips to index")
    _check_unique(ids)
    encoders = sorted(set(np.asarray(lineage.column("encoder_version").to_pylist(), dtype=object)[keep]))
    if len(encoders) != 1:
        raise ValueError(f"{features}: clips from several encoder versions {encoders}; index one version at a time")
    data_versions = sorted(set(np.asarray(lineage.column("data_version").to_pylist(), dtype=object)[keep]))
    digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]
    version = index_version(encoders[0], data_versions, params, digest)
    root = Path(out_dir) if out_dir is not None else Path(cfg.work_dir) / cfg.index.dir
    index_dir = root / version

    if (index_dir / INDEX_FILE).is_file():
        meta = json.loads((index_dir / INDEX_FILE).read_text())
        log.info("index %s is complete: nothing to build", version)
        return IndexBuildResult(
            index_dir,
            version,
            params.kind,
            meta["n_vectors"],
            len(meta["shards"]),
            meta["dim"],
            encoders[0],
            meta["bytes_per_vector"],
            time.perf_counter() - t0,
            True,
            0,
        )

    index_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(index_dir)
    shards: list[dict[str, Any]] = []
    built = 0
    n_total = len(ids)
    trained: bytes | None = None
    dim = 0
    with faiss_threads(cfg.index.threads), progress_bar(progress, n_total, f"index {version} ({params.kind})") as advance:
        for shard_no, (rows, x) in enumerate(_shard_batches(parquet, keep, params.shard_size)):
            dim = x.shape[1]
            done = _finished_shard(index_dir, shard_no, rows)
            if done is not None:  # written by an interrupted run of this version
                shards.append(done)
                advance(len(rows))
                continue
            if params.kind == "ivfpq" and trained is None:
                trained = _load_or_train(index_dir, x, params)
            index = new_shard(dim, params, trained)
            add_vectors(index, x, rows, advance)
            shards.append(_save_shard(index_dir, shard_no, index, int(rows[0])))
            built += 1
            del index
    _write_ids(index_dir, ids)
    meta = {
        "version": version,
        "encoder_version": encoders[0],
        "data_versions": data_versions,
        "clip_ids_digest": digest,
        "features_dir": str(features.resolve()),
        "build_seconds": round(time.perf_counter() - t0, 3),
        "shards": shards,
    }
    _write_sidecar(index_dir, params, meta, dim, n_total)
    bpv = json.loads((index_dir / INDEX_FILE).read_text())["bytes_per_vector"]
    seconds = time.perf_counter() - t0
    log.info("index %s: %d vectors in %d shard(s), %.0f B/vector, %.1f s", version, n_total, len(shards), bpv, seconds)
    return IndexBuildResult(index_dir, version, params.kind, n_total, len(shards), dim, encoders[0], bpv, seconds, False, built)


# --------------------------------------------------------------------------- helpers


def _sha256(path: Path, chunk_bytes: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def _check_unique(ids: np.ndarray) -> None:
    uniq, counts = np.unique(ids.astype(str), return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"duplicate clip ids: {uniq[counts > 1][:5].tolist()}")


def _keep_mask(all_ids: np.ndarray, wanted: Sequence[str] | None, features: Path) -> np.ndarray:
    if wanted is None:
        return np.ones(len(all_ids), dtype=bool)
    wanted_set = set(wanted)
    missing = wanted_set - set(all_ids)
    if missing:
        raise KeyError(f"{len(missing)} clip(s) have no features in {features}: {sorted(missing)[:5]}")
    return np.asarray([c in wanted_set for c in all_ids], dtype=bool)


def _shard_batches(parquet: Any, keep: np.ndarray, shard_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(global rows, normalised vectors) of each shard, read from the Parquet in order."""
    import pyarrow.compute as pc

    kept_before = 0
    offset = 0
    buf_x: list[np.ndarray] = []
    buf_n = 0
    dim = None
    for batch in parquet.iter_batches(batch_size=min(shard_size, 262_144), columns=["clip_id", "clip_embedding"]):
        col = batch.column("clip_embedding")
        lengths = pc.list_value_length(col).to_numpy(zero_copy_only=False)
        m = keep[offset : offset + len(batch)]
        offset += len(batch)
        if not m.any():
            continue
        d = int(lengths[0])
        if dim is None:
            dim = d
        if (lengths != dim).any():
            bad = np.asarray(batch.column("clip_id").to_pylist())[lengths != dim]
            raise ValueError(f"clip embeddings differ in dimension (expected {dim}): {bad[:5].tolist()}")
        x = col.flatten().to_numpy(zero_copy_only=False).reshape(len(batch), dim)[m]
        try:
            x = normalize(x)
        except ValueError as e:
            bad_ids = np.asarray(batch.column("clip_id").to_pylist())[m][~np.isfinite(x).all(axis=1)]
            raise ValueError(f"{e}: clips {bad_ids[:5].tolist()}") from e
        buf_x.append(x)
        buf_n += len(x)
        while buf_n >= shard_size:
            allx = np.concatenate(buf_x)
            yield np.arange(kept_before, kept_before + shard_size), allx[:shard_size]
            kept_before += shard_size
            rest = allx[shard_size:]
            buf_x, buf_n = ([rest] if len(rest) else []), len(rest)
    if buf_n:
        yield np.arange(kept_before, kept_before + buf_n), np.concatenate(buf_x)


def _trained_bytes(sample: np.ndarray, params: IndexParams) -> bytes:
    import faiss

    return faiss.serialize_index(train_ivfpq(sample, params)).tobytes()


def _load_or_train(index_dir: Path, first_shard: np.ndarray, params: IndexParams) -> bytes:
    """The trained empty IVF-PQ (``trained.faiss``), trained on the first shard once."""
    path = index_dir / TRAINED_FILE
    if path.is_file():
        return path.read_bytes()
    data = _trained_bytes(_train_sample(first_shard, params), params)

    def write(p: Path) -> None:
        p.write_bytes(data)

    atomic_write(path, write)
    return data


def _train_sample(x: np.ndarray, params: IndexParams) -> np.ndarray:
    """Up to ``params.train_size`` rows of ``x``, drawn uniformly (seeded)."""
    if len(x) <= params.train_size:
        return x
    rows = np.sort(np.random.default_rng(0).choice(len(x), params.train_size, replace=False))
    return np.ascontiguousarray(x[rows])


def _save_shard(directory: Path, number: int, index: Any, first_row: int) -> dict[str, Any]:
    """Write one shard atomically, then its description (``shard-NNNNN.json``: the resume record)."""
    import faiss

    path = directory / shard_file(number)
    atomic_write(path, lambda p: faiss.write_index(index, str(p)))
    info = {
        "file": path.name,
        "n_vectors": int(index.ntotal),
        "first_row": first_row,
        "bytes": path.stat().st_size,
        "sha256": _sha256(path),
    }
    write_json(path.with_suffix(".json"), info)
    return info


def _finished_shard(directory: Path, number: int, rows: np.ndarray) -> dict[str, Any] | None:
    """The description of shard ``number`` if an earlier run finished it for exactly ``rows``."""
    path = directory / shard_file(number)
    record = path.with_suffix(".json")
    if not (path.is_file() and record.is_file()):
        return None
    info = json.loads(record.read_text())
    if info["n_vectors"] != len(rows) or info["first_row"] != int(rows[0]) or info["bytes"] != path.stat().st_size:
        return None
    return info


def _write_ids(directory: Path, ids: np.ndarray) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"clip_id": pa.array([str(c) for c in ids], type=pa.string())})
    atomic_write(directory / IDS_FILE, lambda p: pq.write_table(table, p))


def _write_sidecar(directory: Path, params: IndexParams, meta: dict[str, Any], dim: int, n: int) -> None:
    import faiss

    index_bytes = sum(int(s["bytes"]) for s in meta["shards"])
    write_json(
        directory / INDEX_FILE,
        {
            **meta,
            "format": FORMAT,
            "kind": params.kind,
            "metric": METRIC,
            "normalized": True,
            "dim": int(dim),
            "n_vectors": int(n),
            "params": params.model_dump(),
            "ids_file": IDS_FILE,
            "index_bytes": index_bytes,
            "bytes_per_vector": round(index_bytes / max(1, n), 3),
            "faiss_version": faiss.__version__,
            "created_at": datetime.now(timezone.utc).isoformat(),
        },
    )


@contextmanager
def progress_bar(enabled: bool, total: int, description: str) -> Iterator[Any]:
    """A rich progress bar (on stderr) over ``total`` items; yields ``advance(n)``. Disabled: a no-op."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.update(task, advance=n)
