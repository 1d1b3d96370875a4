"""Registry fixtures: every registry test runs on two stores.

* ``sqlite`` (the ``local`` profile): a pre-migrated MLflow SQLite database, copied per test.
  Creating an MLflow database runs seconds of Alembic migrations; ``_migrated_db`` pays that
  once per session and each test gets its own copy (on ``/dev/shm`` when it is available,
  because an MLflow run commits to SQLite, and fsyncs, hundreds of times).
* ``mlflow-server`` (the ``cluster`` profile): a real ``mlflow server`` on a PostgreSQL backend
  store (:mod:`tests.services`), started once per session; each test gets its own experiment
  and registered-model names, so it starts from an empty registry as on SQLite.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from clipguard.config import Config, load_config
from clipguard.core.tracking import LOCAL_DB_FILE
from tests.services import MlflowServer, mlflow_server

_SHM = Path("/dev/shm")
FAST_TMP = str(_SHM) if _SHM.is_dir() and os.access(_SHM, os.W_OK) else None


@pytest.fixture(autouse=True)
def _mlflow_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Offline, quiet MLflow; the test loader module trusted; no run left open."""
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("CLIPGUARD_TRUSTED_LOADER_MODULES", "tests.registry")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)
    if "mlflow" in sys.modules:
        import mlflow

        while mlflow.active_run() is not None:
            mlflow.end_run()


@pytest.fixture(scope="session")
def _migrated_db() -> Iterator[Path]:
    import mlflow

    with tempfile.TemporaryDirectory(prefix="clipguard-mlflow-", dir=FAST_TMP) as tmp:
        path = Path(tmp) / LOCAL_DB_FILE
        mlflow.MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()  # creates + migrates
        yield path


def server_registry(server: MlflowServer) -> dict[str, object]:
    """Overrides for a registry of the test's own on ``server``: its tracking URI, and an
    experiment and registered-model names no other test uses (so it starts empty)."""
    uid = uuid.uuid4().hex[:8]
    return {
        "registry.tracking_uri": server.url,
        "registry.experiment": f"clipguard-test-{uid}",
        "registry.models": {family: f"{name}-{uid}" for family, name in load_config().registry.models.items()},
    }


@pytest.fixture(scope="session")
def _server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    with mlflow_server(tmp_path_factory.mktemp("mlflow-server") / "artifacts") as server:
        yield server


@pytest.fixture(params=["sqlite", "mlflow-server"])
def registry_cfg(request: pytest.FixtureRequest) -> Iterator[Config]:
    """A config on a fresh registry: a copy of the migrated SQLite database in ``work_dir``, or
    names of its own on the session's MLflow server (PostgreSQL)."""
    with tempfile.TemporaryDirectory(prefix="clipguard-runs-", dir=FAST_TMP) as tmp:
        if request.param == "sqlite":
            shutil.copyfile(request.getfixturevalue("_migrated_db"), Path(tmp) / LOCAL_DB_FILE)
            yield load_config(overrides={"work_dir": tmp})
            return
        yield load_config("cluster", {"work_dir": tmp, **server_registry(request.getfixturevalue("_server"))})
