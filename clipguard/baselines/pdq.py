"""Perceptual-hash baselines: per-frame PDQ and vPDQ (Meta ThreatExchange), with a hash cache.

What a platform would use without learned models. Both hash one frame per
``cfg.baselines.seconds_per_hash`` seconds into 256-bit PDQ hashes with a quality (0-100):

* ``pdq``: frames sampled by clipguard's reader (:func:`clipguard.media.reader.iter_frames`,
  native resolution) over the clip window, each hashed with ``pdqhash.compute``;
* ``vpdq``: ``vpdq.computeHash`` (ThreatExchange's video PDQ, its own FFmpeg decoding) on
  the whole file, once per file; each clip keeps the frames whose timestamp falls in its
  window.

**Pair score** (:func:`match_hashes`, ThreatExchange vPDQ matching): frames with quality
below ``min_quality`` are dropped; a query frame *matches* when some candidate frame lies
within ``pdq_distance`` bits (Hamming) of it. ``match_share`` is the share of query frames
that match (the conventional decision: copy when it is high). Because it is coarse (most
non-copies tie at 0), a continuous score is computed too: ``similarity`` = mean over query
frames of ``1 - d_min / 256`` (``d_min``: distance to the nearest candidate frame), and
``best_similarity`` its maximum. A pair where either side has no usable frame scores 0.

PDQ is not invariant to mirroring: a horizontally flipped copy is ~128 bits away from its
source, so vPDQ misses flips (and crops, padding, picture-in-picture, heavy overlays) by
design; that is the gap the learned models close.

**Cache** (:class:`HashCache`): ``<cache_dir>/<method>-<params>/hashes.parquet`` holds one
row per clip keyed by ``clip_id`` + window (``start_s``, ``end_s``) with the media file's
size and mtime; a clip is hashed again only when its window or its file changes. New rows
are published in part files as hashing goes (an interrupted run keeps its work) and merged
at the end. A clip whose media cannot be hashed is cached with its error and scores 0.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from clipguard.config import BaselinesConfig
from clipguard.core.io import atomic_write, config_hash
from clipguard.index.faiss_index import progress_bar
from clipguard.media.reader import MediaError, iter_frames

__all__ = [
    "CACHE_SCHEMA",
    "FrameHashes",
    "HashCache",
    "PairMatch",
    "clip_hashes",
    "hamming_matrix",
    "hash_pair_scores",
    "match_hashes",
    "pdq_frame_hashes",
    "vpdq_file_hashes",
]

log = logging.getLogger(__name__)

HashMethod = Literal["pdq", "vpdq"]
HASH_METHODS: tuple[str, ...] = ("pdq", "vpdq")
HASH_BITS = 256
HASH_BYTES = HASH_BITS // 8
CACHE_FILE = "hashes.parquet"
PARTS_DIR = "parts"
FLUSH_EVERY = 256
"""clips hashed between two published part files"""

CACHE_SCHEMA = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("video_uri", pa.string(), nullable=False),
        pa.field("start_s", pa.float64(), nullable=False),
        pa.field("end_s", pa.float64(), nullable=False),
        pa.field("file_size", pa.int64(), nullable=True),
        pa.field("file_mtime_ns", pa.int64(), nullable=True),
        pa.field("times", pa.list_(pa.float64()), nullable=False),
        pa.field("hashes", pa.list_(pa.binary(HASH_BYTES)), nullable=False),
        pa.field("quality", pa.list_(pa.int16()), nullable=False),
        pa.field("error", pa.string(), nullable=True),
    ]
)
"""``hashes.parquet``: frame times (seconds from the file start), packed 256-bit hashes and
qualities of one clip window; ``error`` is ``"<reason>: <message>"`` when it could not be hashed."""

_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint16)


@dataclass(frozen=True)
class FrameHashes:
    """The PDQ hashes of a clip's sampled frames."""

    times: np.ndarray
    """(n,) seconds from the start of the file"""
    hashes: np.ndarray
    """(n, 32) uint8: 256 bits packed, most significant bit first"""
    quality: np.ndarray
    """(n,) PDQ quality, 0-100"""

    def __len__(self) -> int:
        return len(self.times)

    @classmethod
    def empty(cls) -> FrameHashes:
        return cls(np.zeros(0), np.zeros((0, HASH_BYTES), np.uint8), np.zeros(0, np.int16))

    def window(self, start_s: float, end_s: float) -> FrameHashes:
        """The frames with ``start_s <= t < end_s``."""
        eps = 1e-6
        keep = (self.times >= start_s - eps) & (self.times < end_s - eps)
        return FrameHashes(self.times[keep], self.hashes[keep], self.quality[keep])

    def usable(self, min_quality: int) -> np.ndarray:
        """The hashes (k, 32) of frames with quality >= ``min_quality``."""
        return self.hashes[self.quality >= min_quality]


@dataclass(frozen=True)
class PairMatch:
    """How a query clip's frame hashes match a candidate's (see the module docstring)."""

    match_share: float
    similarity: float
    best_similarity: float
    n_query: int
    """usable (quality-filtered) query frames"""
    n_candidate: int


def hamming_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bit distances (n, m) between packed hashes ``a`` (n, 32) and ``b`` (m, 32)."""
    x = np.bitwise_xor(a[:, None, :], b[None, :, :])
    return _POPCOUNT[x].sum(axis=-1, dtype=np.int32)


def match_hashes(query: FrameHashes, candidate: FrameHashes, pdq_distance: int, min_quality: int) -> PairMatch:
    """ThreatExchange vPDQ matching of two clips' frame hashes, plus continuous similarities."""
    q, c = query.usable(min_quality), candidate.usable(min_quality)
    if len(q) == 0 or len(c) == 0:
        return PairMatch(0.0, 0.0, 0.0, len(q), len(c))
    nearest = hamming_matrix(q, c).min(axis=1)
    sim = 1.0 - nearest / HASH_BITS
    return PairMatch(float((nearest <= pdq_distance).mean()), float(sim.mean()), float(sim.max()), len(q), len(c))


def _pack(bits: np.ndarray) -> np.ndarray:
    return np.packbits(np.asarray(bits, dtype=np.uint8).reshape(-1)[:HASH_BITS])


def pdq_frame_hashes(path: str | Path, start_s: float, end_s: float, seconds_per_hash: float) -> FrameHashes:
    """PDQ hash and quality of one frame per ``seconds_per_hash`` over ``[start_s, end_s)``.

    Raises:
        MediaError: the file cannot be decoded.
    """
    import pdqhash

    times, hashes, quality = [], [], []
    for frame in iter_frames(path, fps=1.0 / seconds_per_hash, start=start_s, end=end_s):
        bits, q = pdqhash.compute(np.ascontiguousarray(frame.image))
        times.append(frame.t)
        hashes.append(_pack(bits))
        quality.append(q)
    if not times:
        return FrameHashes.empty()
    return FrameHashes(np.asarray(times, np.float64), np.stack(hashes), np.asarray(quality, np.int16))


def vpdq_file_hashes(path: str | Path, seconds_per_hash: float, threads: int = 0) -> FrameHashes:
    """vPDQ features of a whole video file (``vpdq.computeHash``), one per ``seconds_per_hash``.

    Raises:
        MediaError: the file is missing or vPDQ cannot decode it.
    """
    import vpdq

    p = Path(path)
    if not p.is_file():
        raise MediaError(p, "missing_file")
    if p.stat().st_size == 0:
        raise MediaError(p, "empty_file")
    try:
        features = vpdq.computeHash(str(p), seconds_per_hash=seconds_per_hash, thread_count=threads)
    except Exception as e:  # noqa: BLE001 - vpdq raises plain exceptions for undecodable files
        raise MediaError(p, "decode_error", f"vpdq: {type(e).__name__}: {e}") from e
    if not features:
        raise MediaError(p, "decode_error", "vpdq produced no frame hashes")
    return FrameHashes(
        np.asarray([f.timestamp for f in features], np.float64),
        np.stack([np.frombuffer(bytes.fromhex(f.hex), np.uint8) for f in features]),
        np.asarray([f.quality for f in features], np.int16),
    )


def cache_key(method: HashMethod, cfg: BaselinesConfig) -> str:
    """The cache directory name: the method and the settings that change its hashes."""
    return f"{method}-{config_hash({'method': method, 'seconds_per_hash': cfg.seconds_per_hash}, 8)}"


@dataclass(frozen=True)
class _Entry:
    video_uri: str
    start_s: float
    end_s: float
    stat: tuple[int | None, int | None]
    hashes: FrameHashes
    error: str | None


class HashCache:
    """Frame hashes of clips for one method and its settings, on disk (see the module docstring)."""

    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)
        self._entries: dict[str, _Entry] = {}
        self._pending: list[dict[str, Any]] = []
        self._load()

    def _load(self) -> None:
        tables = [p for p in [self.dir / CACHE_FILE, *sorted((self.dir / PARTS_DIR).glob("*.parquet"))] if p.is_file()]
        for path in tables:
            for row in pq.read_table(path, schema=CACHE_SCHEMA).to_pylist():
                self._entries[row["clip_id"]] = _entry_from_row(row)

    def get(
        self, clip_id: str, video_uri: str, start_s: float, end_s: float, stat: tuple[int | None, int | None]
    ) -> _Entry | None:
        """The cached entry of a clip if its window and media file are unchanged."""
        e = self._entries.get(clip_id)
        if e is None or (e.video_uri, e.start_s, e.end_s, e.stat) != (video_uri, float(start_s), float(end_s), stat):
            return None
        return e

    def put(self, clip_id: str, entry: _Entry) -> None:
        """Record a clip's hashes (published with the next :meth:`flush`)."""
        self._entries[clip_id] = entry
        self._pending.append(_row_from_entry(clip_id, entry))
        if len(self._pending) >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        """Publish pending entries as a part file (atomic)."""
        if not self._pending:
            return
        table = pa.Table.from_pylist(self._pending, schema=CACHE_SCHEMA)
        atomic_write(self.dir / PARTS_DIR / f"part-{uuid.uuid4().hex}.parquet", lambda p: pq.write_table(table, p))
        self._pending = []

    def compact(self) -> None:
        """Merge everything into ``hashes.parquet`` (one row per clip) and drop the part files."""
        self.flush()
        parts = sorted((self.dir / PARTS_DIR).glob("*.parquet"))
        if not parts:
            return
        rows = [_row_from_entry(c, e) for c, e in sorted(self._entries.items())]
        table = pa.Table.from_pylist(rows, schema=CACHE_SCHEMA)
        atomic_write(self.dir / CACHE_FILE, lambda p: pq.write_table(table, p))
        for p in parts:
            p.unlink(missing_ok=True)


def _entry_from_row(row: dict[str, Any]) -> _Entry:
    hashes = row["hashes"]
    fh = FrameHashes(
        np.asarray(row["times"], np.float64),
        np.frombuffer(b"".join(hashes), np.uint8).reshape(len(hashes), HASH_BYTES)
        if hashes
        else np.zeros((0, HASH_BYTES), np.uint8),
        np.asarray(row["quality"], np.int16),
    )
    return _Entry(
        row["video_uri"], float(row["start_s"]), float(row["end_s"]), (row["file_size"], row["file_mtime_ns"]), fh, row["error"]
    )


def _row_from_entry(clip_id: str, e: _Entry) -> dict[str, Any]:
    return {
        "clip_id": clip_id,
        "video_uri": e.video_uri,
        "start_s": e.start_s,
        "end_s": e.end_s,
        "file_size": e.stat[0],
        "file_mtime_ns": e.stat[1],
        "times": e.hashes.times.tolist(),
        "hashes": [h.tobytes() for h in e.hashes.hashes],
        "quality": e.hashes.quality.astype(int).tolist(),
        "error": e.error,
    }


def _stat(path: Path | None) -> tuple[int | None, int | None]:
    try:
        st = path.stat() if path is not None else None
    except OSError:
        return None, None
    return (int(st.st_size), int(st.st_mtime_ns)) if st is not None else (None, None)


def clip_hashes(
    root: str | Path,
    clips: pd.DataFrame,
    method: HashMethod,
    cfg: BaselinesConfig,
    cache_dir: str | Path,
    progress: bool = True,
) -> dict[str, tuple[FrameHashes, str | None]]:
    """Frame hashes of ``clips`` (manifest rows: clip_id, video_uri, start_s, end_s), cached.

    Returns ``{clip_id: (hashes, error)}``; ``error`` is ``"<reason>: <message>"`` for a clip
    whose media could not be hashed (its hashes are then empty). Only clips missing from the
    cache (or whose window/file changed) are hashed.
    """
    from clipguard.data.schema import resolve_media

    if method not in HASH_METHODS:
        raise ValueError(f"unknown hash method {method!r} (known: {HASH_METHODS})")
    root = Path(root).resolve()
    cache = HashCache(Path(cache_dir) / cache_key(method, cfg))
    rows = clips.drop_duplicates("clip_id").to_dict("records")
    paths: dict[str, Path | None] = {}
    path_errors: dict[str, MediaError] = {}
    for uri in {r["video_uri"] for r in rows}:
        try:
            paths[uri] = resolve_media(root, uri)
        except MediaError as e:
            paths[uri], path_errors[uri] = None, e
    stats = {uri: _stat(p) for uri, p in paths.items()}
    out: dict[str, tuple[FrameHashes, str | None]] = {}
    todo = []
    for r in rows:
        hit = cache.get(r["clip_id"], r["video_uri"], r["start_s"], r["end_s"], stats[r["video_uri"]])
        if hit is not None:
            out[r["clip_id"]] = (hit.hashes, hit.error)
        else:
            todo.append(r)
    if todo:
        log.info("%s: hashing %d clip(s) (%d cached)", method, len(todo), len(rows) - len(todo))
    by_file: dict[str, list[dict[str, Any]]] = {}
    for r in todo:
        by_file.setdefault(r["video_uri"], []).append(r)

    def record(r: dict[str, Any], hashes: FrameHashes, error: str | None) -> None:
        entry = _Entry(r["video_uri"], float(r["start_s"]), float(r["end_s"]), stats[r["video_uri"]], hashes, error)
        cache.put(r["clip_id"], entry)
        out[r["clip_id"]] = (hashes, error)

    with progress_bar(progress and bool(todo), len(todo), f"{method} hashes") as advance:
        for uri, group in by_file.items():
            path = paths[uri]
            if path is None:
                for r in group:
                    record(r, FrameHashes.empty(), _error(path_errors[uri]))
                advance(len(group))
                continue
            if method == "vpdq":
                try:
                    whole = vpdq_file_hashes(path, cfg.seconds_per_hash, cfg.vpdq_threads)
                    for r in group:
                        record(r, whole.window(float(r["start_s"]), float(r["end_s"])), None)
                except MediaError as e:
                    for r in group:
                        record(r, FrameHashes.empty(), _error(e))
                advance(len(group))
                continue
            for r in group:
                try:
                    record(r, pdq_frame_hashes(path, float(r["start_s"]), float(r["end_s"]), cfg.seconds_per_hash), None)
                except MediaError as e:
                    record(r, FrameHashes.empty(), _error(e))
                except Exception as e:  # noqa: BLE001 - one undecodable clip must not stop the batch
                    record(r, FrameHashes.empty(), f"decode_error: {uri}: {type(e).__name__}: {e}")
                advance(1)
    cache.compact()
    return out


def hash_pair_scores(
    pairs: pd.DataFrame,
    hashes: dict[str, tuple[FrameHashes, str | None]],
    cfg: BaselinesConfig,
) -> pd.DataFrame:
    """Per pair (rows of ``pairs``, same order): match_share, similarity, best_similarity,
    usable frame counts and error (empty when both clips were hashed)."""
    records = []
    for q_id, c_id in zip(pairs["query_clip_id"], pairs["candidate_clip_id"]):
        (qh, qe), (ch, ce) = hashes[q_id], hashes[c_id]
        m = match_hashes(qh, ch, cfg.pdq_distance, cfg.min_quality)
        errors = ([f"query {qe}"] if qe else []) + ([f"candidate {ce}"] if ce else [])
        records.append(
            {
                "match_share": m.match_share,
                "similarity": m.similarity,
                "best_similarity": m.best_similarity,
                "n_query_frames": m.n_query,
                "n_candidate_frames": m.n_candidate,
                "error": "; ".join(errors),
            }
        )
    return pd.DataFrame.from_records(records, index=pairs.index)


def _error(e: Exception) -> str:
    """``"<reason>: <path>[: <detail>]"`` of a :class:`~clipguard.media.reader.MediaError`."""
    reason, path, detail = getattr(e, "reason", "decode_error"), getattr(e, "path", ""), getattr(e, "detail", str(e))
    return f"{reason}: {path}" + (f": {detail}" if detail else "")
