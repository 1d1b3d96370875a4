"""Registry fixtures: a pre-migrated MLflow SQLite database, copied per test.

Creating an MLflow database runs seconds of Alembic migrations; ``_migrated_db`` pays
that once per session and ``registry_cfg`` gives each test its own copy: a fresh,
isolated tracking store, registry and artifact root. Both live on ``/dev/shm`` when it is
available, because an MLflow run commits to SQLite (and fsyncs) hundreds of times.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from clipguard.config import Config, load_config
from clipguard.core.tracking import LOCAL_DB_FILE

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


@pytest.fixture
def registry_cfg(_migrated_db: Path) -> Iterator[Config]:
    """A config whose ``work_dir`` holds a fresh copy of the migrated database."""
    with tempfile.TemporaryDirectory(prefix="clipguard-runs-", dir=FAST_TMP) as tmp:
        shutil.copyfile(_migrated_db, Path(tmp) / LOCAL_DB_FILE)
        yield load_config(overrides={"work_dir": tmp})
