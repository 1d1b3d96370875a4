"""The BentoML service end to end: one server (``bentoml serve`` on a free 127.0.0.1 port) per module.

Calls go through ``bentoml.SyncHTTPClient`` (errors surface as ``BentoMLException`` with
the HTTP status in ``error_code``) and, for raw status/body checks, ``httpx``.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from pathlib import Path

import bentoml
import httpx
import pytest
from bentoml.exceptions import BentoMLException

from clipguard.serving.launch import LocalServer, local_server
from tests.serving.conftest import DATA_VERSION, THRESHOLD, ServingWorld

MAX_UPLOAD = 4096
ADMIN_TOKEN = "test-admin-token-5f2c"


@pytest.fixture(scope="module")
def server(pair_world: ServingWorld, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    arguments = {
        **pair_world.arguments,
        "serving.max_upload_bytes": MAX_UPLOAD,
        "serving.max_pairs_per_request": 8,
        "serving.max_latency_ms": 10_000,  # a busy test machine must not shed load (503) here
    }
    with local_server(
        arguments, tmp_path_factory.mktemp("server") / "server.log", env={"CLIPGUARD_ADMIN_TOKEN": ADMIN_TOKEN}
    ) as s:
        yield s


@pytest.fixture(scope="module")
def client(server: LocalServer) -> Iterator[bentoml.SyncHTTPClient]:
    with bentoml.SyncHTTPClient(server.url, server_ready_timeout=60) as c:
        yield c


def _pair(q: str, c: str) -> dict[str, str]:
    return {"query_clip_id": q, "candidate_clip_id": c}


def test_health_reports_ready_and_versions(client: bentoml.SyncHTTPClient, server: LocalServer) -> None:
    health = client.health()
    assert health["status"] == "ready" and health["encoder_version"] == "e000test"
    assert health["model_version"] and health["index_version"] and health["threshold"] == THRESHOLD
    assert health["data_version"] == DATA_VERSION
    assert health["batching"] is True and health["reload"] == "fixed model: restart to change it"
    assert httpx.get(f"{server.url}/readyz").status_code == 200


def test_score_returns_scores_labels_and_versions(client: bentoml.SyncHTTPClient) -> None:
    results = client.score(pairs=[_pair("train_src0", "train_cpy0"), _pair("val_src1", "train_cpy3")])
    assert [(r["query_clip_id"], r["candidate_clip_id"]) for r in results] == [
        ("train_src0", "train_cpy0"),
        ("val_src1", "train_cpy3"),
    ]
    for r in results:
        assert 0.0 <= r["score"] <= 1.0 and r["label"] == (r["score"] >= THRESHOLD) and r["threshold"] == THRESHOLD
        assert r["model_version"] and r["encoder_version"] == "e000test" and r["index_version"]
        assert r["data_version"] == DATA_VERSION  # data, features, model and index named in every decision


def test_unknown_clip_is_404_naming_it(client: bentoml.SyncHTTPClient) -> None:
    with pytest.raises(BentoMLException) as err:
        client.score(pairs=[_pair("train_src0", "no-such-clip")])
    assert err.value.error_code == 404 and "no-such-clip" in str(err.value)


def test_malformed_requests_are_400(server: LocalServer) -> None:
    url = f"{server.url}/rci/score"
    assert httpx.post(url, content=b"{not json", headers={"content-type": "application/json"}).status_code == 400
    assert httpx.post(url, json={"pairs": []}).status_code == 400
    assert httpx.post(url, json={"pairs": [{"query_clip_id": "train_src0"}]}).status_code == 400
    assert httpx.post(url, json={"pairs": [_pair("train_src0", "train_cpy0")] * 9}).status_code == 400  # > max pairs
    assert httpx.post(f"{server.url}/rci/search", json={"clip_id": "train_src0", "k": 0}).status_code == 400


def test_search_returns_k_scored_candidates(client: bentoml.SyncHTTPClient) -> None:
    found = client.search(clip_id="train_src0", k=3)
    assert found["query_clip_id"] == "train_src0" and len(found["candidates"]) == 3
    assert found["candidates"][0]["clip_id"] == "train_cpy0" and found["index_version"]
    with pytest.raises(BentoMLException) as err:
        client.search(clip_id="no-such-clip", k=3)
    assert err.value.error_code == 404


def test_oversized_uploads_are_413(server: LocalServer, tmp_path: Path) -> None:
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * (MAX_UPLOAD + 1))
    small = tmp_path / "small.mp4"
    small.write_bytes(b"\0" * 16)
    with open(big, "rb") as b, open(small, "rb") as s:  # one file over the limit: refused by name
        r = httpx.post(f"{server.url}/rci/score_media", files={"query": b, "candidate": s})
    assert r.status_code == 413 and "'query'" in r.text
    huge = tmp_path / "huge.mp4"
    huge.write_bytes(b"\0" * (3 * MAX_UPLOAD + 70_000))
    with open(huge, "rb") as h:  # a body over the route's limit: refused before it is read
        r = httpx.post(f"{server.url}/rci/search_media", files={"video": h})
    assert r.status_code == 413 and "exceeds" in r.text


def test_media_without_encoders_is_404(client: bentoml.SyncHTTPClient, tmp_path: Path) -> None:
    video = tmp_path / "v.mp4"
    video.write_bytes(b"\0" * 16)
    with pytest.raises(BentoMLException) as err:
        client.score_media(query=video, candidate=video)
    assert err.value.error_code == 404 and "media endpoints are off" in str(err.value)


def test_concurrent_requests_are_batched(client: bentoml.SyncHTTPClient, server: LocalServer) -> None:
    before = client.health()

    def one(i: int) -> int:
        r = httpx.post(f"{server.url}/rci/score", json={"pairs": [_pair(f"train_src{i % 8}", f"train_cpy{i % 8}")]}, timeout=60)
        return r.status_code

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(one, range(48)))
    after = client.health()
    assert statuses == [200] * 48
    calls, pairs = after["score_calls"] - before["score_calls"], after["scored_pairs"] - before["scored_pairs"]
    assert pairs == 48 and calls < pairs  # adaptive batches of more than one request


def test_reload_of_a_fixed_model_keeps_it(server: LocalServer) -> None:
    answer = httpx.post(f"{server.url}/rci/reload", json={}, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30)
    assert answer.status_code == 200, answer.text
    health = answer.json()
    assert health["status"] == "ready" and health["reloads"] == 0


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": ADMIN_TOKEN}])
def test_a_write_without_the_admin_token_is_refused(server: LocalServer, headers: dict[str, str]) -> None:
    """Missing, wrong and malformed (no ``Bearer``) tokens: 401 naming the fix; reads stay open."""
    answer = httpx.post(f"{server.url}/rci/reload", json={}, headers=headers, timeout=30)
    assert answer.status_code == 401 and answer.headers["www-authenticate"].startswith("Bearer")
    assert "CLIPGUARD_ADMIN_TOKEN" in answer.json()["error"]
    assert httpx.post(f"{server.url}/health", json={}, timeout=30).status_code == 200
