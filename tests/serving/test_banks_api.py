"""The bank routes of the service (one ``bentoml serve`` for the module, its banks in a SQLite file
the test reads directly): reads are open, writes need the admin token, and a refused write
leaves the database as it was."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from clipguard.banks import BankStore
from clipguard.serving.launch import LocalServer, local_server
from tests.serving.conftest import ServingWorld

ADMIN_TOKEN = "test-bank-token-91ab"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
WRITES = {
    "/banks/create": {"bank": "v", "kind": "violation"},
    "/banks/add": {"bank": "v", "references": [{"ref_id": "r1", "clip_id": "train_src0"}]},
    "/banks/remove": {"bank": "v", "ref_ids": ["r1"]},
    "/banks/disable": {"bank": "v", "ref_ids": ["r"]},
    "/banks/enable": {"bank": "v", "ref_ids": ["r"]},
    "/banks/disable_bank": {"bank": "v"},
    "/banks/enable_bank": {"bank": "v"},
    "/banks/rollout": {"bank": "v", "rollout": 0.5},
}


@pytest.fixture(scope="module")
def bank_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BankStore]:
    store = BankStore(f"sqlite:///{tmp_path_factory.mktemp('banks') / 'banks.db'}")
    yield store
    store.close()


@pytest.fixture(scope="module")
def server(pair_world: ServingWorld, bank_db: BankStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    arguments = {
        **pair_world.arguments,
        "banks.url": bank_db.url,
        "banks.max_refs_per_request": 3,
        "banks.refresh_interval_s": 0,  # every search checks the bank's version
    }
    log = tmp_path_factory.mktemp("bank-server") / "server.log"
    with local_server(arguments, log, env={"CLIPGUARD_ADMIN_TOKEN": ADMIN_TOKEN}) as s:
        yield s


def post(server: LocalServer, route: str, body: dict, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{server.url}{route}", json=body, headers=headers or {}, timeout=30)


def test_writes_without_the_admin_token_are_refused_and_change_nothing(server: LocalServer, bank_db: BankStore) -> None:
    before = (bank_db.list_banks(), bank_db.audit_log())
    for route, body in WRITES.items():
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            answer = post(server, route, body, headers)
            assert answer.status_code == 401, (route, headers, answer.text)
            assert "CLIPGUARD_ADMIN_TOKEN" in answer.json()["error"]
    assert (bank_db.list_banks(), bank_db.audit_log()) == before
    assert post(server, "/banks/list", {}).status_code == 200  # reads are open


def test_authenticated_writes_change_the_database_and_audit_the_actor(server: LocalServer, bank_db: BankStore) -> None:
    created = post(server, "/banks/create", {"bank": "api-bank", "kind": "rci-reference", "rollout": 0.5}, AUTH)
    assert created.status_code == 200, created.text
    assert created.json()["content_version"] == 0 and bank_db.get_bank("api-bank").rollout == 0.5
    refs = [{"ref_id": "r1", "clip_id": "train_src0", "label": "scam"}, {"ref_id": "r2", "clip_id": "train_src1"}]
    added = post(server, "/banks/add", {"bank": "api-bank", "references": refs}, {**AUTH, "X-Clipguard-Actor": "alice"})
    assert added.status_code == 200, added.text
    assert added.json() == {
        "bank": "api-bank",
        "action": "add",
        "content_version": 1,
        "counts": {"added": 2, "updated": 0, "unchanged": 0},
    }
    assert post(server, "/banks/disable", {"bank": "api-bank", "ref_ids": ["r2"]}, AUTH).json()["counts"] == {
        "disabled": 1,
        "unchanged": 0,
    }
    assert post(server, "/banks/disable_bank", {"bank": "api-bank"}, AUTH).json()["enabled"] is False  # the bank itself

    info = bank_db.get_bank("api-bank")
    assert (info.references, info.disabled, info.enabled, info.content_version) == (1, 1, False, 2)
    audit = bank_db.audit_log("api-bank")
    assert [(a.action, a.ref_id, a.actor) for a in audit] == [
        ("disable_bank", None, "api:admin"),
        ("disable", "r2", "api:admin"),
        ("add", "r2", "api:alice"),
        ("add", "r1", "api:alice"),
        ("create_bank", None, "api:admin"),
    ]

    got = post(server, "/banks/get", {"bank": "api-bank", "include_removed": True}).json()
    assert got["references"] == 1 and [(r["ref_id"], r["enabled"]) for r in got["page"]] == [("r1", True), ("r2", False)]
    log = post(server, "/banks/audit", {"bank": "api-bank", "actor": "api:alice"}).json()
    assert [a["ref_id"] for a in log] == ["r2", "r1"] and log[0]["content_version"] == 1
    assert any(b["name"] == "api-bank" for b in post(server, "/banks/list", {}).json())


def test_bank_errors_are_4xx_naming_the_problem(server: LocalServer, bank_db: BankStore) -> None:
    assert post(server, "/banks/create", {"bank": "errs", "kind": "trend"}, AUTH).status_code == 200
    cases = [
        ("/banks/create", {"bank": "errs", "kind": "trend"}, 409, "exists already"),
        ("/banks/create", {"bank": "other", "kind": "spam"}, 400, ""),
        ("/banks/rollout", {"bank": "errs", "rollout": 1.5}, 400, ""),
        ("/banks/rollout", {"bank": "nope", "rollout": 0.5}, 404, "no bank named 'nope'"),
        ("/banks/remove", {"bank": "errs", "ref_ids": ["ghost"]}, 404, "'ghost' not in the bank"),
        ("/banks/add", {"bank": "errs", "references": [{"ref_id": f"r{i}", "clip_id": "c"} for i in range(4)]}, 400, ""),
        ("/banks/get", {"bank": "nope"}, 404, "no bank named 'nope'"),
    ]
    for route, body, status, message in cases:
        answer = post(server, route, body, AUTH)
        assert answer.status_code == status and message in answer.text, (route, body, answer.status_code, answer.text)
    bad_actor = post(server, "/banks/disable_bank", {"bank": "errs"}, {**AUTH, "X-Clipguard-Actor": "no spaces"})
    assert bad_actor.status_code == 400 and "x-clipguard-actor" in bad_actor.text
    assert bank_db.get_bank("errs").enabled and [a.action for a in bank_db.audit_log("errs")] == ["create_bank"]
    assert "other" not in {b.name for b in bank_db.list_banks()}


def test_bank_search_follows_changes_without_a_restart(server: LocalServer, pair_world: ServingWorld) -> None:
    a, b, c = pair_world.clip_ids[:3]
    assert post(server, "/banks/create", {"bank": "live", "kind": "rci-reference"}, AUTH).status_code == 200
    refs = [{"ref_id": f"ref-{x}", "clip_id": x, "label": "copy"} for x in (a, b)]
    assert post(server, "/banks/add", {"bank": "live", "references": refs}, AUTH).status_code == 200

    found = post(server, "/banks/search", {"bank": "live", "clip_id": a, "k": 5}).json()
    assert found["applied"] and found["content_version"] == 1 and found["model_version"]
    assert [m["ref_id"] for m in found["matches"]][0] == f"ref-{a}" and found["matches"][0]["similarity"] > 0.99
    assert {m["ref_id"] for m in found["matches"]} == {f"ref-{a}", f"ref-{b}"}

    assert post(server, "/banks/disable", {"bank": "live", "ref_ids": [f"ref-{a}"]}, AUTH).status_code == 200
    assert (
        post(server, "/banks/add", {"bank": "live", "references": [{"ref_id": f"ref-{c}", "clip_id": c}]}, AUTH).status_code
        == 200
    )
    after = post(server, "/banks/search", {"bank": "live", "clip_id": a, "k": 5}).json()
    assert after["content_version"] == 3
    assert {m["ref_id"] for m in after["matches"]} == {f"ref-{b}", f"ref-{c}"}  # no restart: disabled out, new in

    assert post(server, "/banks/disable_bank", {"bank": "live"}, AUTH).status_code == 200
    off = post(server, "/banks/search", {"bank": "live", "clip_id": a}).json()
    assert off["applied"] is False and off["matches"] == []
    assert post(server, "/banks/search", {"bank": "nope", "clip_id": a}).status_code == 404
    assert post(server, "/banks/search", {"bank": "live", "clip_id": "no-such-clip"}).status_code == 404
