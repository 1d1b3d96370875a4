"""A bank's FAISS index follows the bank: never a disabled or removed reference, a new one as soon
as the version moved (no restart), no duplicates; in place where FAISS can, else rebuilt."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clipguard.banks import BankSearcher, BankStore, ClipEmbeddings, NewReference, UnknownBankError, in_rollout
from clipguard.features.store_format import FEATURES_FILE
from clipguard.index import IndexParams
from tests.banks.conftest import DIM, random_embeddings

ACTOR = "cli:test"
PARAMS = {
    # HNSW cannot remove vectors: a removal rebuilds
    "hnsw": IndexParams(kind="hnsw", hnsw_m=16, ef_construction=40, ef_search=64),
    # IVF-PQ without refine removes in place; nprobe = nlist searches every list
    "ivfpq": IndexParams(kind="ivfpq", ivf_nlist=4, nprobe=4, pq_m=8, pq_nbits=6, train_size=1_000),
}


def bank_of(store: BankStore, n: int, name: str = "bank") -> None:
    store.create_bank(name, "violation", ACTOR)
    store.add_references(name, [NewReference(f"r{i}", f"c{i}", "weapons") for i in range(n)], ACTOR)


def own_hits(searcher: BankSearcher, embeddings: ClipEmbeddings, clips: list[int], k: int = 10) -> list[list[str]]:
    """The ref ids found for each clip's own embedding (query id = the clip id)."""
    ids = [f"c{i}" for i in clips]
    result = searcher.search(embeddings.vectors[clips], ids, k)
    assert all(result.applied)
    hits = [[m.ref_id for m in found] for found in result.matches]
    assert all(len(h) == len(set(h)) for h in hits), "a reference was returned twice"
    return hits


@pytest.mark.parametrize("kind", ["hnsw", "ivfpq"])
def test_search_follows_adds_disables_and_removals(sqlite_store: BankStore, kind: str) -> None:
    store = sqlite_store
    emb = random_embeddings(400)
    bank_of(store, 300)
    searcher = BankSearcher(store, "bank", emb, PARAMS[kind], refresh_interval_s=0)
    assert (searcher.content_version, searcher.size) == (1, 300)
    assert [h[0] for h in own_hits(searcher, emb, list(range(0, 300, 7)))] == [f"r{i}" for i in range(0, 300, 7)]

    # additions: applied in place for every index kind, found by the next search (no restart)
    store.add_references("bank", [NewReference(f"r{i}", f"c{i}") for i in range(300, 340)], ACTOR)
    assert [h[0] for h in own_hits(searcher, emb, list(range(300, 340)))] == [f"r{i}" for i in range(300, 340)]
    assert searcher.content_version == 2 and searcher.size == 340

    # disables and removals: in place where the index can remove, else a rebuild
    gone = list(range(0, 40))
    store.disable_references("bank", [f"r{i}" for i in gone[:20]], ACTOR)
    store.remove_references("bank", [f"r{i}" for i in gone[20:]], ACTOR)
    report = searcher.refresh()
    assert report.mode == ("incremental" if kind == "ivfpq" else "rebuild")
    assert (report.from_version, report.to_version, report.references) == (2, 4, 300)
    everything = own_hits(searcher, emb, list(range(400)), k=20)
    returned = {r for hits in everything for r in hits}
    assert returned.isdisjoint(f"r{i}" for i in gone) and "r340" not in returned  # never a disabled, removed or unknown ref
    assert [everything[i][0] for i in range(40, 340, 11)] == [f"r{i}" for i in range(40, 340, 11)]

    # re-enabled and restored references come back
    store.enable_references("bank", ["r0"], ACTOR)
    store.add_references("bank", [NewReference("r25", "c25")], ACTOR)
    assert [h[0] for h in own_hits(searcher, emb, [0, 25])] == ["r0", "r25"]
    check = searcher.check()
    assert check.ok, check
    assert (check.active, check.indexed, check.vectors) == (302, 302, 302)


def test_a_new_clip_or_label_of_a_reference_is_searched(sqlite_store: BankStore) -> None:
    emb = random_embeddings(50)
    bank_of(sqlite_store, 30)
    searcher = BankSearcher(sqlite_store, "bank", emb, PARAMS["hnsw"], refresh_interval_s=0)
    sqlite_store.add_references("bank", [NewReference("r1", "c1", "scam"), NewReference("r2", "c40", "weapons")], ACTOR)
    report = searcher.refresh()
    assert report.mode == "rebuild"  # r2's old vector must go: HNSW rebuilds
    found = searcher.search(emb.vectors[[1, 40, 2]], ["q1", "q40", "q2"], 3).matches
    assert (found[0][0].ref_id, found[0][0].label) == ("r1", "scam")
    assert (found[1][0].ref_id, found[1][0].clip_id) == ("r2", "c40")
    assert all(m.ref_id != "r2" for m in found[2])  # the old clip of r2 is no longer in the bank
    assert searcher.check().ok


def test_a_label_change_alone_updates_in_place(sqlite_store: BankStore) -> None:
    emb = random_embeddings(30)
    bank_of(sqlite_store, 30)
    searcher = BankSearcher(sqlite_store, "bank", emb, PARAMS["hnsw"], refresh_interval_s=0)
    sqlite_store.add_references("bank", [NewReference("r3", "c3", "scam")], ACTOR)
    report = searcher.refresh()
    assert (report.mode, report.added, report.removed) == ("incremental", 0, 0)
    assert searcher.search(emb.vectors[[3]], ["q"], 1).matches[0][0].label == "scam"


def test_the_version_is_checked_at_the_refresh_interval(sqlite_store: BankStore) -> None:
    emb = random_embeddings(40)
    bank_of(sqlite_store, 30)
    searcher = BankSearcher(sqlite_store, "bank", emb, PARAMS["hnsw"], refresh_interval_s=3600)
    sqlite_store.add_references("bank", [NewReference("r35", "c35")], ACTOR)
    stale = searcher.search(emb.vectors[[35]], ["q"], 1)
    assert stale.content_version == 1 and stale.matches[0][0].ref_id != "r35"  # not due yet
    assert searcher.refresh().mode == "incremental"
    fresh = searcher.search(emb.vectors[[35]], ["q"], 1)
    assert fresh.content_version == 2 and fresh.matches[0][0].ref_id == "r35"
    assert searcher.refresh().mode == "unchanged"


def test_a_reference_without_an_embedding_keeps_the_index_it_has(sqlite_store: BankStore) -> None:
    emb = random_embeddings(30)
    bank_of(sqlite_store, 30)
    searcher = BankSearcher(sqlite_store, "bank", emb, PARAMS["hnsw"], refresh_interval_s=0)
    sqlite_store.add_references("bank", [NewReference("orphan", "no-such-clip")], ACTOR)
    result = searcher.search(emb.vectors[[4]], ["q"], 1)
    assert result.content_version == 1 and result.matches[0][0].ref_id == "r4"
    assert searcher.last_error is not None and "'orphan' have no embedding for clip(s) 'no-such-clip'" in searcher.last_error
    sqlite_store.remove_references("bank", ["orphan"], ACTOR)
    assert searcher.search(emb.vectors[[4]], ["q"], 1).content_version == 3 and searcher.last_error is None


def test_bank_switch_and_rollout_apply_per_query(sqlite_store: BankStore) -> None:
    emb = random_embeddings(30)
    bank_of(sqlite_store, 30)
    searcher = BankSearcher(sqlite_store, "bank", emb, PARAMS["hnsw"], refresh_interval_s=0)
    queries = [f"query-{i}" for i in range(30)]
    sqlite_store.disable_bank("bank", ACTOR)
    off = searcher.search(emb.vectors, queries, 1)
    assert not any(off.applied) and all(m == [] for m in off.matches) and off.content_version == 1
    sqlite_store.enable_bank("bank", ACTOR)
    sqlite_store.set_rollout("bank", 0.5, ACTOR)
    staged = searcher.search(emb.vectors, queries, 1)
    assert staged.applied == [in_rollout("bank", q, 0.5) for q in queries] and 0 < sum(staged.applied) < 30
    assert all(bool(m) == a for m, a in zip(staged.matches, staged.applied))
    assert searcher.search(emb.vectors, queries, 1).applied == staged.applied  # stable per query id


def test_an_empty_bank_then_its_first_references(sqlite_store: BankStore) -> None:
    emb = random_embeddings(10)
    sqlite_store.create_bank("empty", "trend", ACTOR)
    searcher = BankSearcher(sqlite_store, "empty", emb, PARAMS["hnsw"], refresh_interval_s=0)
    assert searcher.search(emb.vectors[:2], ["a", "b"], 3).matches == [[], []]
    sqlite_store.add_references("empty", [NewReference("seed", "c7")], ACTOR)
    assert searcher.search(emb.vectors[[7]], ["a"], 3).matches[0][0].ref_id == "seed"
    sqlite_store.remove_references("empty", ["seed"], ACTOR)
    assert searcher.search(emb.vectors[[7]], ["a"], 3).matches == [[]]
    with pytest.raises(UnknownBankError):
        BankSearcher(sqlite_store, "nope", emb, PARAMS["hnsw"])


def test_removing_most_of_a_bank_compacts_the_index(sqlite_store: BankStore) -> None:
    emb = random_embeddings(300)
    bank_of(sqlite_store, 300)
    searcher = BankSearcher(sqlite_store, "bank", emb, PARAMS["ivfpq"], refresh_interval_s=0)
    sqlite_store.remove_references("bank", [f"r{i}" for i in range(10)], ACTOR)
    assert searcher.refresh().mode == "incremental"
    sqlite_store.remove_references("bank", [f"r{i}" for i in range(10, 200)], ACTOR)
    assert searcher.refresh().mode == "rebuild"  # 300 rows for 100 live references
    assert searcher.check().ok


def test_embeddings_from_features_or_a_mapping(tmp_path: Path) -> None:
    vectors = np.arange(3 * DIM, dtype=np.float32).reshape(3, DIM)
    table = pa.table({"clip_id": ["a", "b", "c"], "clip_embedding": pa.array(list(vectors), type=pa.list_(pa.float32()))})
    pq.write_table(table, tmp_path / FEATURES_FILE)
    stored = ClipEmbeddings.from_features(tmp_path)
    assert len(stored) == 3 and np.array_equal(stored.vectors[stored.rows(["c", "a"])], vectors[[2, 0]])
    emb = ClipEmbeddings.from_mapping({"a": np.ones(DIM), "b": np.zeros(DIM)})
    assert len(emb) == 2 and emb.rows(["b", "x", "a"]).tolist() == [1, -1, 0]
    with pytest.raises(ValueError, match="duplicate clip id"):
        ClipEmbeddings(["a", "a"], np.ones((2, DIM)))
    with pytest.raises(ValueError, match="expected one"):
        ClipEmbeddings(["a"], np.ones((2, DIM)))
