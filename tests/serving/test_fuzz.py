"""Fuzzing the service from its own OpenAPI spec (schemathesis): whatever a client sends that
the spec allows, and much that it does not, the answer is never a 5xx.

The server is the media world's (cached features, an index, encoders for uploads, a SQLite
bank database) and every request carries the admin token, so every route (reads, uploads and
the token-guarded writes) is exercised past its authentication.
Each operation's requests are drawn by schemathesis's Hypothesis strategies for it, valid
(positive) and schema-violating (negative), and sent to the live server; schemathesis's
``not_a_server_error`` check judges every answer.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error

from clipguard.serving.launch import LocalServer, local_server
from tests.serving.conftest import ServingWorld

EXAMPLES_PER_ROUTE = 25
TOKEN = "fuzz-token-7c1d"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
"""sent with every request, so the write handlers (banks, reload) see the fuzzed bodies too"""


@pytest.fixture(scope="module")
def fuzz_server(media_world: ServingWorld, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    arguments = {**media_world.arguments, "serving.max_upload_bytes": 1 << 20, "serving.max_latency_ms": 10_000}
    log = tmp_path_factory.mktemp("fuzz") / "server.log"
    with local_server(arguments, log, env={"CLIPGUARD_ADMIN_TOKEN": TOKEN}) as server:
        yield server


def test_no_request_gets_a_server_error(fuzz_server: LocalServer) -> None:
    answer = httpx.get(f"{fuzz_server.url}/docs.json", timeout=30)
    assert answer.status_code == 200, f"the service's OpenAPI spec: {answer.status_code} {answer.text[:200]}"
    schema = schemathesis.openapi.from_dict(answer.json())
    operations = [op.ok() for op in schema.get_all_operations()]
    assert len(operations) >= 6, [op.label for op in operations]
    statuses: dict[str, set[int]] = {}

    for op, mode in itertools.product(operations, (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)):

        @given(case=op.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES_PER_ROUTE, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case) -> None:
            response = case.call(base_url=fuzz_server.url, headers=AUTH, timeout=60)
            statuses.setdefault(f"{op.label} ({mode.value})", set()).add(response.status_code)
            case.validate_response(response, checks=[not_a_server_error])

        try:
            fuzz()
        except Unsatisfiable:  # no input can violate a route without parameters or body
            assert mode is schemathesis.GenerationMode.NEGATIVE, op.label

    assert {label.split(" (")[0] for label in statuses} == {op.label for op in operations}
    assert all(code < 500 for codes in statuses.values() for code in codes), statuses


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data; boundary=b0", b"--b0\r\n[]--b0--\r\n"),  # what the fuzzer found: a 500 before
        ("multipart/form-data", b"--b0\r\n\r\n--b0--\r\n"),  # no boundary parameter
    ],
)
def test_a_malformed_multipart_upload_is_400_naming_it(fuzz_server: LocalServer, content_type: str, body: bytes) -> None:
    answer = httpx.post(f"{fuzz_server.url}/rci/score_media", content=body, headers={"content-type": content_type}, timeout=30)
    assert answer.status_code == 400 and "malformed multipart body" in answer.json()["error"]
