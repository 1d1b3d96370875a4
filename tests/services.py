"""The real services of the cluster configuration, for the tests that use them.

Every machine of ours (yours and CI's) runs PostgreSQL (127.0.0.1:5432, trust auth) and Redis
(127.0.0.1:6379). The service-backed tests use them for real: an MLflow tracking server on a
PostgreSQL backend store (started here, once per session), Feast with the Redis online store
and a SQL registry on PostgreSQL. A missing service **fails** the test with a message naming
it (CI must run these tests, never skip them). Override the addresses with
``CLIPGUARD_TEST_POSTGRES`` (a ``postgresql+psycopg://`` URL of a server, any database) and
``CLIPGUARD_TEST_REDIS`` (``host:port``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

POSTGRES = os.environ.get("CLIPGUARD_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("CLIPGUARD_TEST_REDIS", "127.0.0.1:6379")
REDIS_TEST_DB = 15
"""The Redis database the tests own (flushed before each use)."""


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _with_database(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


def require_postgres() -> None:
    import psycopg

    try:
        with psycopg.connect(_libpq(POSTGRES), connect_timeout=5) as conn:
            conn.execute("select 1")
    except psycopg.Error as e:
        pytest.fail(f"this test needs PostgreSQL at {POSTGRES} (CLIPGUARD_TEST_POSTGRES): {e}", pytrace=False)


def require_redis() -> None:
    import redis

    host, port = REDIS.rsplit(":", 1)
    try:
        redis.Redis(host=host, port=int(port), socket_connect_timeout=5).ping()
    except redis.RedisError as e:
        pytest.fail(f"this test needs Redis at {REDIS} (CLIPGUARD_TEST_REDIS): {e}", pytrace=False)


@contextmanager
def fresh_database(prefix: str = "clipguard_test") -> Iterator[str]:
    """A new, empty PostgreSQL database (its SQLAlchemy URL), dropped afterwards."""
    import psycopg

    require_postgres()
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_libpq(POSTGRES), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(POSTGRES, name)
    finally:
        with psycopg.connect(_libpq(POSTGRES), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def redis_connection_string() -> str:
    """Feast's ``host:port,db=N`` for the tests' own Redis database, flushed."""
    import redis

    require_redis()
    host, port = REDIS.rsplit(":", 1)
    redis.Redis(host=host, port=int(port), db=REDIS_TEST_DB).flushdb()
    return f"{REDIS},db={REDIS_TEST_DB}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class MlflowServer:
    url: str
    backend_store_uri: str
    log: Path


@contextmanager
def _service(
    name: str, cmd: list[str], ready_url: str, log: Path, timeout_s: float, env: dict[str, str] | None = None
) -> Iterator[None]:
    """Run ``cmd`` (output to ``log``) until the block ends; ready once ``ready_url`` answers 200."""
    import httpx

    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                pytest.fail(f"{name} exited {proc.returncode}:\n{log.read_text()[-3000:]}", pytrace=False)
            try:
                if httpx.get(ready_url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"{name} not ready within {timeout_s:.0f} s:\n{log.read_text()[-3000:]}", pytrace=False)
            time.sleep(0.2)
        yield
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()


@contextmanager
def mlflow_server(artifacts: Path, ready_timeout_s: float = 180.0) -> Iterator[MlflowServer]:
    """``mlflow server`` on a fresh PostgreSQL backend store, artifacts proxied from ``artifacts``."""
    with fresh_database("clipguard_mlflow") as db:
        port = _free_port()
        log = artifacts.parent / "mlflow-server.log"
        mlflow = Path(sys.executable).with_name("mlflow")
        cmd = [str(mlflow), "server", "--backend-store-uri", db, "--artifacts-destination", str(artifacts),
               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]  # fmt: skip
        env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
        url = f"http://127.0.0.1:{port}"
        with _service("mlflow server", cmd, f"{url}/health", log, ready_timeout_s, env):
            yield MlflowServer(url, db, log)


ALERTMANAGER_BINARIES = ("prometheus-alertmanager", "alertmanager")
"""Debian's name of the Prometheus Alertmanager binary (``make setup`` installs the package), and upstream's."""


@contextmanager
def alertmanager(directory: Path, webhook_url: str, ready_timeout_s: float = 60.0) -> Iterator[str]:
    """A real Prometheus Alertmanager on 127.0.0.1 (a free port; no clustering) that routes every
    alert to the webhook receiver at ``webhook_url`` (resolutions included, groups flushed every
    second); yields its base URL."""
    import shutil

    binary = next((b for b in map(shutil.which, ALERTMANAGER_BINARIES) if b), None)
    if binary is None:
        pytest.fail(
            "this test needs a Prometheus Alertmanager binary (Debian package prometheus-alertmanager: make setup)",
            pytrace=False,
        )
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "alertmanager.yml"
    config.write_text(
        "route:\n  receiver: clipguard\n  group_by: [alertname]\n  group_wait: 100ms\n  group_interval: 1s\n"
        "  repeat_interval: 1h\nreceivers:\n  - name: clipguard\n    webhook_configs:\n"
        f"      - url: {webhook_url}\n        send_resolved: true\n"
    )
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [binary, f"--config.file={config}", f"--storage.path={directory / 'data'}",
           f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=warn"]  # fmt: skip
    with _service("alertmanager", cmd, f"{url}/-/ready", directory / "alertmanager.log", ready_timeout_s):
        yield url


def wait_for(check: Callable[[], Any], timeout_s: float = 20.0) -> Any:
    """Poll ``check`` every 0.1 s until it returns something truthy (returned); fail after ``timeout_s``
    (for what a service does in the background: Alertmanager forwarding to its receivers)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"not seen within {timeout_s} s")
