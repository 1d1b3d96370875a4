"""Bank operations on SQLite and on a real PostgreSQL: CRUD with audit rows, idempotent adds,
content_version bumps, clear errors that change nothing, serialised concurrent writers."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from clipguard.banks import (
    BankDatabaseError,
    BankExistsError,
    BankStore,
    InvalidBankValueError,
    NewReference,
    UnknownBankError,
    UnknownReferenceError,
    bank_url,
    read_references_csv,
)
from clipguard.config import load_config

ALICE = "cli:alice"


def refs(*ids: str, label: str | None = "weapons") -> list[NewReference]:
    return [NewReference(i, f"clip-{i}", label) for i in ids]


def test_crud_writes_audit_rows_with_each_change(store: BankStore) -> None:
    created = store.create_bank("violations", "violation", ALICE, rollout=0.5)
    assert (created.name, created.kind, created.enabled, created.rollout, created.content_version) == (
        "violations",
        "violation",
        True,
        0.5,
        0,
    )
    assert created.created_at.tzinfo is not None and created.references == 0

    added = store.add_references("violations", refs("a", "b", "c"), ALICE)
    assert added.counts == {"added": 3, "updated": 0, "unchanged": 0} and added.content_version == 1
    assert store.disable_references("violations", ["b"], "api:bob").counts == {"disabled": 1, "unchanged": 0}
    assert store.remove_references("violations", ["c"], ALICE).counts == {"removed": 1, "unchanged": 0}
    assert store.enable_references("violations", ["b"], ALICE).content_version == 4

    info = store.get_bank("violations")
    assert (info.references, info.disabled, info.removed, info.content_version) == (2, 0, 1, 4)
    assert [b.name for b in store.list_banks()] == ["violations"]
    listed = store.list_references("violations")
    assert [(r.ref_id, r.clip_id, r.label, r.enabled) for r in listed] == [
        ("a", "clip-a", "weapons", True),
        ("b", "clip-b", "weapons", True),
    ]
    removed = [r for r in store.list_references("violations", include_removed=True) if r.removed]
    assert [r.ref_id for r in removed] == ["c"] and removed[0].removed_at is not None and removed[0].version == 3

    log = store.audit_log("violations")
    assert [(a.action, a.ref_id, a.actor, a.content_version) for a in log] == [
        ("enable", "b", ALICE, 4),
        ("remove", "c", ALICE, 3),
        ("disable", "b", "api:bob", 2),
        ("add", "c", ALICE, 1),
        ("add", "b", ALICE, 1),
        ("add", "a", ALICE, 1),
        ("create_bank", None, ALICE, 0),
    ]
    assert log[1].details == {"clip_id": "clip-c", "label": "weapons", "enabled": True}  # what was removed
    assert log[-1].details == {"kind": "violation", "rollout": 0.5, "enabled": True}
    assert [a.action for a in store.audit_log(ref_id="b")] == ["enable", "disable", "add"]
    assert [a.ref_id for a in store.audit_log(actor="api:bob")] == ["b"]
    assert len(store.audit_log("violations", limit=2)) == 2

    # bank settings: audited, not content (the version stays)
    assert store.disable_bank("violations", ALICE).enabled is False
    assert store.set_rollout("violations", 1.0, ALICE).rollout == 1.0
    assert store.enable_bank("violations", ALICE).content_version == 4
    settings = store.audit_log("violations", limit=3)
    assert [(a.action, a.ref_id, a.content_version) for a in settings] == [
        ("enable_bank", None, 4),
        ("set_rollout", None, 4),
        ("disable_bank", None, 4),
    ]
    assert settings[1].details == {"rollout": {"before": 0.5, "after": 1.0}}


def test_re_adding_an_existing_reference_is_not_a_duplicate(store: BankStore) -> None:
    store.create_bank("b", "rci-reference", ALICE)
    store.add_references("b", refs("a", "b"), ALICE)
    again = store.add_references("b", [*refs("a", "b"), *refs("a")], ALICE)  # the same id twice in one call too
    assert again.counts == {"added": 0, "updated": 0, "unchanged": 2} and again.content_version == 1
    assert len(store.list_references("b", include_removed=True)) == 2 and len(store.audit_log("b")) == 3

    # another clip or label: updated in place (one row, audited with before/after)
    changed = store.add_references("b", [NewReference("a", "clip-a2", "scam"), *refs("b")], ALICE)
    assert changed.counts == {"added": 0, "updated": 1, "unchanged": 1} and changed.content_version == 2
    update = store.audit_log("b", ref_id="a", limit=1)[0]
    assert (
        update.action == "update"
        and update.details["before"]["clip_id"] == "clip-a"
        and update.details["after"]["label"] == "scam"
    )

    # a disabled reference re-added as it is stays disabled; a removed one is restored, enabled
    store.disable_references("b", ["a"], ALICE)
    assert store.add_references("b", [NewReference("a", "clip-a2", "scam")], ALICE).counts["unchanged"] == 1
    store.remove_references("b", ["b"], ALICE)
    restored = store.add_references("b", refs("b"), ALICE)
    assert restored.counts == {"added": 0, "updated": 1, "unchanged": 0}
    rows = {r.ref_id: r for r in store.list_references("b", include_removed=True)}
    assert len(rows) == 2 and rows["b"].enabled and not rows["b"].removed and rows["b"].removed_at is None
    assert not rows["a"].enabled


def test_content_version_bumps_once_per_content_change(store: BankStore) -> None:
    store.create_bank("t", "trend", ALICE)
    steps = [
        (lambda: store.add_references("t", refs(*(f"r{i}" for i in range(500))), ALICE), 1),  # one bulk call, one bump
        (lambda: store.add_references("t", refs("r0", "r1"), ALICE), 0),
        (lambda: store.disable_references("t", ["r0", "r1"], ALICE), 1),
        (lambda: store.disable_references("t", ["r0"], ALICE), 0),
        (lambda: store.enable_references("t", ["r0"], ALICE), 1),
        (lambda: store.remove_references("t", ["r2", "r3"], ALICE), 1),
        (lambda: store.remove_references("t", ["r2"], ALICE), 0),
        (lambda: store.set_rollout("t", 0.2, ALICE), 0),
        (lambda: store.disable_bank("t", ALICE), 0),
    ]
    version = 0
    for step, bump in steps:
        step()
        version += bump
        assert store.get_bank("t").content_version == version
    assert version == 4
    changed = store.reference_rows("t", since_version=2)  # what a searcher at version 2 reads
    assert {r.ref_id for r in changed} == {"r0", "r2", "r3"} and {r.version for r in changed} == {3, 4}
    assert {r.ref_id: r.active for r in changed} == {"r0": True, "r2": False, "r3": False}


def test_refused_calls_name_the_bank_and_reason_and_change_nothing(store: BankStore) -> None:
    with pytest.raises(InvalidBankValueError, match=r"unknown kind 'spam': choose from rci-reference, violation, trend"):
        store.create_bank("x", "spam", ALICE)
    for bad in (-0.1, 1.5, float("nan"), True, "0.5"):
        with pytest.raises(InvalidBankValueError, match=r"bank 'x': rollout must be a fraction in \[0, 1\]"):
            store.create_bank("x", "trend", ALICE, rollout=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidBankValueError, match="a bank name is"):
        store.create_bank("no spaces", "trend", ALICE)
    assert store.list_banks() == []

    store.create_bank("x", "trend", ALICE)
    with pytest.raises(BankExistsError, match="'x' exists already"):
        store.create_bank("x", "violation", ALICE)
    with pytest.raises(InvalidBankValueError, match="rollout must be"):
        store.set_rollout("x", 2.0, ALICE)
    for call in (
        lambda: store.add_references("nope", refs("a"), ALICE),
        lambda: store.remove_references("nope", ["a"], ALICE),
        lambda: store.disable_references("nope", ["a"], ALICE),
        lambda: store.set_rollout("nope", 0.5, ALICE),
        lambda: store.enable_bank("nope", ALICE),
        lambda: store.get_bank("nope"),
        lambda: store.list_references("nope"),
    ):
        with pytest.raises(UnknownBankError, match="no bank named 'nope'"):
            call()

    store.add_references("x", refs("a", "b"), ALICE)
    before = (store.get_bank("x"), len(store.audit_log()))
    with pytest.raises(UnknownReferenceError, match=r"bank 'x': reference\(s\) 'zz' not in the bank"):
        store.remove_references("x", ["a", "zz"], ALICE)  # 'a' exists: still nothing is removed
    store.remove_references("x", ["b"], ALICE)
    with pytest.raises(UnknownReferenceError, match="'b' not in the bank or removed"):
        store.disable_references("x", ["a", "b"], ALICE)
    with pytest.raises(InvalidBankValueError, match="'a' is given twice with different values"):
        store.add_references("x", [NewReference("a", "c1"), NewReference("a", "c2"), NewReference("new", "c3")], ALICE)
    with pytest.raises(InvalidBankValueError, match="clip_id of 'e' must be a non-empty string"):
        store.add_references("x", [NewReference("d", "c4"), NewReference("e", "")], ALICE)
    with pytest.raises(InvalidBankValueError, match="no references given"):
        store.add_references("x", [], ALICE)
    with pytest.raises(InvalidBankValueError, match="actor must be"):
        store.disable_bank("x", "")
    after = store.get_bank("x")
    assert (after.references, after.removed, after.content_version) == (1, 1, before[0].content_version + 1)
    assert len(store.audit_log()) == before[1] + 1  # only the removal of 'b'
    assert {r.ref_id for r in store.list_references("x", include_removed=True)} == {"a", "b"}


def test_concurrent_writers_to_one_bank_are_serialised(store: BankStore) -> None:
    store.create_bank("busy", "violation", ALICE)
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        try:
            for step in range(3):
                ids = [f"w{w}-{step}-{i}" for i in range(20)]
                store.add_references("busy", refs(*ids), f"cli:w{w}")
                store.disable_references("busy", ids[:2], f"cli:w{w}")
        except BaseException as e:  # surfaced below, in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    info = store.get_bank("busy")
    assert info.content_version == 4 * 3 * 2  # every call bumped once: no lost or merged update
    assert (info.references, info.disabled) == (4 * 3 * 18, 4 * 3 * 2)
    log = store.audit_log("busy", limit=10_000)
    assert len(log) == 4 * 3 * 22 + 1
    per_version: dict[int, set[str]] = {}
    for a in log[:-1]:
        per_version.setdefault(a.content_version, set()).add(a.actor)
    assert sorted(per_version) == list(range(1, 25)) and all(len(actors) == 1 for actors in per_version.values())


def test_references_csv(tmp_path: Path) -> None:
    path = tmp_path / "refs.csv"
    path.write_text("ref_id,clip_id,label\nr1,c1,scam\nr2,c2\n\nr3,c3,\n")
    assert read_references_csv(path) == [NewReference("r1", "c1", "scam"), NewReference("r2", "c2"), NewReference("r3", "c3")]
    path.write_text("r1,c1\nr2\n")
    with pytest.raises(ValueError, match=r"refs.csv:2: expected ref_id,clip_id\[,label\]"):
        read_references_csv(path)


def test_the_database_url_and_an_unreachable_database() -> None:
    assert bank_url(load_config("local", {"work_dir": "/srv/w"})) == "sqlite:////srv/w/banks.db"
    assert bank_url(load_config("cluster")) == "postgresql+psycopg://postgres@127.0.0.1:5432/banks"
    assert load_config("k8s").banks.url == "postgresql+psycopg://clipguard@postgres:5432/banks"
    down = BankStore("postgresql+psycopg://postgres:secret@127.0.0.1:1/banks")
    with pytest.raises(BankDatabaseError, match=r"postgres:\*\*\*@127.0.0.1:1/banks cannot be reached") as err:
        down.list_banks()
    assert "secret" not in str(err.value)
