"""Searching a bank: a FAISS index over its enabled references that follows the bank's changes.

:class:`BankIndex` is the searchable set of one bank at one ``content_version``: the
embeddings of its enabled, non-removed references (looked up by clip id in a
:class:`ClipEmbeddings`: the feature store's ``clip_embedding``, or any vectors) in a
:class:`clipguard.index.ClipIndex` built by :func:`clipguard.index.build_index_from_vectors`
with the configured parameters (``cfg.index``). FAISS ids are the index's own rows; a row keeps
its reference until the next rebuild.

**Updates.** To catch up from version ``v`` it reads only the references changed after ``v``
(:meth:`BankStore.reference_rows <clipguard.banks.store.BankStore.reference_rows>`) and:

* adds new / re-enabled references with ``add_with_ids`` (to the last shard), for every
  index kind;
* removes removed / disabled ones (and the old vector of a reference whose clip changed) with
  ``remove_ids`` where the index type allows it: ``ivfpq`` without ``refine``. HNSW cannot
  remove vectors and ``IndexRefine`` does not, so there a removal rebuilds the bank's index
  (for a 1M-reference HNSW bank that is minutes: use ``index.kind: ivfpq`` for large banks);
* rebuilds when the bank was empty, or when removed rows would outnumber the live ones.

:class:`BankSearcher` holds a bank's index and settings for a serving process: at most every
``banks.refresh_interval_s`` seconds a search first reads the bank's row (one indexed lookup);
when its ``content_version`` moved, the changes are applied before the search, without a
restart. A failed refresh (database unreachable, a reference without an embedding) keeps the
index it has, logs the reason (``last_error``) and is retried at the next interval. The bank's
``enabled`` flag and ``rollout`` are read at the same check: a disabled bank matches nothing,
and a bank at rollout ``r`` is searched only for the queries :func:`~clipguard.banks.rollout.in_rollout`
selects. One search or update runs at a time per searcher (FAISS indexes must not be searched
while they are changed); a rebuild is made beside the serving index and swapped in.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from clipguard.banks.errors import BankError, MissingEmbeddingError
from clipguard.banks.rollout import in_rollout
from clipguard.banks.store import BankState, BankStore, ReferenceRow
from clipguard.config import Config
from clipguard.features.store_format import read_clip_features
from clipguard.index.faiss_index import (
    ClipIndex,
    IndexIntegrityError,
    IndexParams,
    add_vectors,
    build_index_from_vectors,
    faiss_threads,
    normalize,
)

__all__ = [
    "BankIndex",
    "BankMatch",
    "BankSearchResult",
    "BankSearcher",
    "ClipEmbeddings",
    "ConsistencyReport",
    "RefreshReport",
    "supports_removal",
]

log = logging.getLogger(__name__)

COMPACT_FACTOR = 2
"""rebuild when the index's rows (removed ones included) exceed this many times its live references"""


def supports_removal(params: IndexParams) -> bool:
    """Whether indexes built with ``params`` remove vectors in place (``remove_ids``): IVF-PQ
    without re-scoring does; HNSW and ``IndexRefine`` do not."""
    return params.kind == "ivfpq" and params.refine == "none"


class ClipEmbeddings:
    """Clip embeddings by clip id: what a bank's references are looked up in.

    Args:
        clip_ids: one id per row of ``vectors`` (unique).
        vectors: (n, d) embeddings (normalised when indexed).
    """

    def __init__(self, clip_ids: Sequence[str], vectors: np.ndarray) -> None:
        x = np.asarray(vectors, dtype=np.float32)
        if x.ndim != 2 or len(x) != len(clip_ids):
            raise ValueError(f"{len(clip_ids)} clip ids for embeddings of shape {x.shape}: expected one (n, d) row per id")
        self._row = {c: i for i, c in enumerate(clip_ids)}
        if len(self._row) != len(clip_ids):
            raise ValueError(f"{len(clip_ids) - len(self._row)} duplicate clip id(s) among the embeddings")
        self.vectors = x

    @classmethod
    def from_mapping(cls, embeddings: Mapping[str, Sequence[float] | np.ndarray]) -> ClipEmbeddings:
        """Embeddings given as ``clip_id -> vector``."""
        ids = list(embeddings)
        vectors = np.stack([np.asarray(embeddings[c], dtype=np.float32) for c in ids]) if ids else np.zeros((0, 0), np.float32)
        return cls(ids, vectors)

    @classmethod
    def from_features(cls, features_dir: str | Path) -> ClipEmbeddings:
        """The ``clip_embedding`` of every clip of a feature version (:mod:`clipguard.features.store_format`)."""
        table = read_clip_features(features_dir, columns=["clip_id", "clip_embedding"])
        return cls.from_mapping(dict(zip(table["clip_id"], table["clip_embedding"])))

    def __len__(self) -> int:
        return len(self._row)

    def rows(self, clip_ids: Sequence[str]) -> np.ndarray:
        """Row of each clip id in ``vectors`` (-1: no embedding)."""
        return np.fromiter((self._row.get(c, -1) for c in clip_ids), dtype=np.int64, count=len(clip_ids))


def reference_vectors(bank: str, refs: Sequence[ReferenceRow], embeddings: ClipEmbeddings) -> np.ndarray:
    """The embeddings of ``refs``' clips, in order.

    Raises:
        MissingEmbeddingError: naming the references whose clip has no embedding.
    """
    rows = embeddings.rows([r.clip_id for r in refs])
    missing = np.flatnonzero(rows < 0).tolist()
    if missing:
        raise MissingEmbeddingError(bank, [refs[i].ref_id for i in missing], [refs[i].clip_id for i in missing])
    return embeddings.vectors[rows]


@dataclass(frozen=True)
class BankMatch:
    """A reference found for a query, with the cosine similarity of their embeddings."""

    ref_id: str
    clip_id: str
    label: str | None
    similarity: float


@dataclass(frozen=True)
class BankSearchResult:
    """Per query: whether the bank applied (enabled and in its rollout) and its matches, best first."""

    bank: str
    content_version: int
    applied: list[bool]
    matches: list[list[BankMatch]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RefreshReport:
    """What a refresh did: ``unchanged`` (same content_version; settings re-read), ``incremental``
    (``added`` / ``removed`` vectors in place) or ``rebuild`` (all ``removed`` vectors replaced by
    ``added`` new ones); ``references``: what the index holds now."""

    bank: str
    from_version: int
    to_version: int
    mode: Literal["unchanged", "incremental", "rebuild"]
    added: int
    removed: int
    references: int
    seconds: float


@dataclass(frozen=True)
class ConsistencyReport:
    """The index compared with the store's enabled references at ``content_version``."""

    bank: str
    content_version: int
    store_version: int
    active: int
    """enabled, non-removed references in the store"""
    indexed: int
    """references the index maps to a row"""
    vectors: int
    """vectors the FAISS index holds (== indexed, or some are duplicated / lost)"""
    missing: list[str]
    """active references the index lacks"""
    extra: list[str]
    """indexed references that are not active"""
    stale: list[str]
    """indexed references whose clip changed"""

    @property
    def ok(self) -> bool:
        return (
            self.content_version == self.store_version
            and not (self.missing or self.extra or self.stale)
            and self.vectors == self.indexed == self.active
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


@dataclass(frozen=True)
class _Plan:
    """The in-place update that brings an index up to date."""

    drops: list[tuple[int, int]]
    """(reference primary key, FAISS row) to remove"""
    adds: list[ReferenceRow]
    relabels: dict[int, tuple[str, str, str | None]]
    """row -> new (ref_id, clip_id, label) of a reference whose label changed"""


@dataclass
class BankIndex:
    """The searchable set of one bank at ``version`` (see the module docstring)."""

    bank: str
    version: int
    params: IndexParams
    index: ClipIndex | None
    """None while the bank has no enabled reference"""
    row_of: dict[int, int] = field(default_factory=dict)
    """reference primary key -> FAISS row, for the references the index holds"""
    refs: list[tuple[str, str, str | None]] = field(default_factory=list)
    """FAISS row -> (ref_id, clip_id, label); rows removed since the last build keep their entry"""

    @classmethod
    def build(
        cls,
        bank: str,
        rows: Sequence[ReferenceRow],
        embeddings: ClipEmbeddings,
        params: IndexParams,
        version: int,
        threads: int | None = None,
    ) -> BankIndex:
        """The index of the active references among ``rows`` (the bank at ``version``).

        Raises:
            MissingEmbeddingError: an active reference's clip has no embedding.
        """
        active = [r for r in rows if r.active]
        if not active:
            return cls(bank, version, params, None)
        x = reference_vectors(bank, active, embeddings)
        meta = {"bank": bank, "content_version": version}
        index = build_index_from_vectors(x, [r.ref_id for r in active], params, meta=meta, threads=threads)
        return cls(
            bank,
            version,
            params,
            index,
            {r.id: i for i, r in enumerate(active)},
            [(r.ref_id, r.clip_id, r.label) for r in active],
        )

    @property
    def size(self) -> int:
        """References the index holds."""
        return len(self.row_of)

    def plan(self, changes: Sequence[ReferenceRow]) -> _Plan | None:
        """The in-place update for references changed since ``version``; None: rebuild instead
        (the index is empty or would become so, it cannot remove vectors, or holes would dominate)."""
        drops: list[tuple[int, int]] = []
        adds: list[ReferenceRow] = []
        relabels: dict[int, tuple[str, str, str | None]] = {}
        for ref in changes:
            row = self.row_of.get(ref.id)
            if row is not None and (not ref.active or self.refs[row][1] != ref.clip_id):
                drops.append((ref.id, row))
                row = None
            if ref.active and row is None:
                adds.append(ref)
            elif ref.active and row is not None and self.refs[row][2] != ref.label:
                relabels[row] = (ref.ref_id, ref.clip_id, ref.label)
        live = self.size - len(drops) + len(adds)
        if self.index is None or live == 0 or (drops and not supports_removal(self.params)):
            return None
        if len(self.refs) + len(adds) > COMPACT_FACTOR * live:
            return None
        return _Plan(drops, adds, relabels)

    def apply(self, plan: _Plan, vectors: np.ndarray, version: int, threads: int | None = None) -> None:
        """Apply ``plan`` in place (``vectors``: the embeddings of ``plan.adds``); the index is then at ``version``.

        Raises:
            IndexIntegrityError: FAISS removed fewer vectors than planned (``version`` is then
                set to -1, so that the next refresh rebuilds).
        """
        assert self.index is not None, "plan() returns None for an empty index"
        shards = self.index.shards
        if plan.drops:
            ids = np.asarray([row for _, row in plan.drops], dtype=np.int64)
            removed = sum(int(shard.remove_ids(ids)) for shard in shards)
            for pk, _ in plan.drops:
                del self.row_of[pk]
            if removed != len(ids):
                self.version = -1
                raise IndexIntegrityError(
                    f"bank {self.bank!r}: FAISS removed {removed} of {len(ids)} vectors; the next refresh rebuilds"
                )
        for row, entry in plan.relabels.items():
            self.refs[row] = entry
        clip_ids = self.index.clip_ids
        if plan.adds:
            first = len(self.refs)
            rows = np.arange(first, first + len(plan.adds), dtype=np.int64)
            with faiss_threads(threads):
                add_vectors(shards[-1], normalize(vectors), rows)
            for ref, row in zip(plan.adds, rows.tolist()):
                self.row_of[ref.id] = row
                self.refs.append((ref.ref_id, ref.clip_id, ref.label))
            clip_ids = np.concatenate([clip_ids, np.asarray([r.ref_id for r in plan.adds], dtype=object)])
        # a new ClipIndex over the same shards: it caches the shard sizes
        self.index = ClipIndex(shards, clip_ids, self.params, {**self.index.meta, "content_version": version})
        self.version = version

    def search(self, vectors: np.ndarray, k: int) -> list[list[BankMatch]]:
        """The ``k`` nearest references of each query vector, best first."""
        if self.index is None:
            return [[] for _ in range(len(vectors))]
        found = self.index.search(vectors, k)
        out = []
        for sims, rows in zip(found.similarities.tolist(), found.rows.tolist()):
            hits = []
            for sim, row in zip(sims, rows):
                if row >= 0:
                    ref_id, clip_id, label = self.refs[row]
                    hits.append(BankMatch(ref_id, clip_id, label, float(sim)))
            out.append(hits)
        return out


class BankSearcher:
    """One bank's index in a serving process, kept at the bank's content_version (module docstring).

    Args:
        store: the bank database.
        bank: the bank's name.
        embeddings: where the references' clips are looked up.
        params: how the index is built (``IndexParams.from_config(cfg.index)``).
        refresh_interval_s: a search checks the bank's version when this long has passed since
            the last check (0: on every search).
        threads: FAISS threads for building (None: all).

    Raises:
        UnknownBankError; MissingEmbeddingError (the first build must succeed).
    """

    def __init__(
        self,
        store: BankStore,
        bank: str,
        embeddings: ClipEmbeddings,
        params: IndexParams,
        refresh_interval_s: float = 5.0,
        threads: int | None = None,
    ) -> None:
        self.store = store
        self.bank = bank
        self.embeddings = embeddings
        self.params = params
        self.refresh_interval_s = refresh_interval_s
        self.threads = threads
        self.last_error: str | None = None
        self._lock = threading.Lock()
        """held while the index is searched or changed in place"""
        self._refresh_lock = threading.Lock()
        self._state: BankState = store.bank_state(bank)
        self._index = BankIndex(bank, -1, params, None)
        self._last_check = 0.0
        self.refresh()

    @classmethod
    def from_config(cls, cfg: Config, bank: str, embeddings: ClipEmbeddings, store: BankStore | None = None) -> BankSearcher:
        """A searcher with the index parameters of ``cfg.index`` and the interval of ``cfg.banks``."""
        return cls(
            store or BankStore.from_config(cfg),
            bank,
            embeddings,
            IndexParams.from_config(cfg.index),
            cfg.banks.refresh_interval_s,
            cfg.index.threads,
        )

    @property
    def content_version(self) -> int:
        """The bank version the index holds."""
        return self._index.version

    @property
    def size(self) -> int:
        """References the index holds."""
        return self._index.size

    @property
    def state(self) -> BankState:
        """The bank's settings as last read."""
        return self._state

    def refresh(self) -> RefreshReport:
        """Check the bank's version now and apply what changed (waits for a refresh in progress).

        Raises:
            BankError (database unreachable, missing embeddings); IndexIntegrityError.
        """
        with self._refresh_lock:
            return self._refresh()

    def _refresh(self) -> RefreshReport:
        t0 = time.perf_counter()
        self._last_check = time.monotonic()
        state = self.store.bank_state(self.bank)
        current = self._index
        before = current.version
        if state.content_version == before:
            self._state = state
            return RefreshReport(self.bank, before, before, "unchanged", 0, 0, current.size, time.perf_counter() - t0)
        if before < 0:  # nothing built yet (or a failed update): build from every row
            changes, plan = [], None
        else:
            changes = self.store.reference_rows(self.bank, since_version=before)
            plan = current.plan(changes)
        if plan is None:
            rows = self.store.reference_rows(self.bank)
            version = max([state.content_version, *(r.version for r in rows)])
            rebuilt = BankIndex.build(self.bank, rows, self.embeddings, self.params, version, self.threads)
            with self._lock:
                self._index, self._state = rebuilt, state
            log.info("bank %s: index rebuilt at version %d (%d references)", self.bank, version, rebuilt.size)
            report = RefreshReport(self.bank, before, version, "rebuild", rebuilt.size, current.size, rebuilt.size, 0.0)
        else:
            version = max([state.content_version, *(r.version for r in changes)])
            vectors = reference_vectors(self.bank, plan.adds, self.embeddings)
            with self._lock:
                current.apply(plan, vectors, version, self.threads)
                self._state = state
            report = RefreshReport(self.bank, before, version, "incremental", len(plan.adds), len(plan.drops), current.size, 0.0)
        self.last_error = None
        return replace(report, seconds=time.perf_counter() - t0)

    def _refresh_if_due(self) -> None:
        if time.monotonic() - self._last_check < self.refresh_interval_s or not self._refresh_lock.acquire(blocking=False):
            return  # not due, or another thread is refreshing: search what is loaded
        try:
            self._refresh()
        except (BankError, ValueError, RuntimeError) as e:  # FAISS raises RuntimeError
            self.last_error = str(e)
            log.warning("bank %s: refresh failed, searching version %d: %s", self.bank, self._index.version, e)
        finally:
            self._refresh_lock.release()

    def search(self, vectors: np.ndarray, query_ids: Sequence[str], k: int = 10) -> BankSearchResult:
        """The ``k`` nearest references of each query (``vectors`` (n, d), one ``query_ids`` entry
        per row: the rollout is decided per query id), after a version check when one is due."""
        q = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        if len(q) != len(query_ids):
            raise ValueError(f"{len(query_ids)} query ids for {len(q)} query vectors")
        self._refresh_if_due()
        with self._lock:
            index, state = self._index, self._state
            applied = [state.enabled and in_rollout(self.bank, str(qid), state.rollout) for qid in query_ids]
            chosen = [i for i, a in enumerate(applied) if a]
            matches: list[list[BankMatch]] = [[] for _ in query_ids]
            if chosen:
                for i, found in zip(chosen, index.search(q[chosen], k)):
                    matches[i] = found
            return BankSearchResult(self.bank, index.version, applied, matches)

    def check(self) -> ConsistencyReport:
        """Refresh, then compare the index with the store's enabled references (ids, clips, vector count)."""
        self.refresh()
        store_version = self.store.bank_state(self.bank).content_version
        rows = self.store.reference_rows(self.bank)
        with self._lock:
            index = self._index
            active = {r.id: r for r in rows if r.active}
            held = index.row_of
            missing = sorted(active[pk].ref_id for pk in active.keys() - held.keys())
            extra = sorted(index.refs[held[pk]][0] for pk in held.keys() - active.keys())
            stale = sorted(
                active[pk].ref_id for pk in active.keys() & held.keys() if index.refs[held[pk]][1] != active[pk].clip_id
            )
            vectors = index.index.n_vectors if index.index is not None else 0
            indexed = len(set(held.values()))
            return ConsistencyReport(
                self.bank, index.version, store_version, len(active), indexed, vectors, missing, extra, stale
            )
