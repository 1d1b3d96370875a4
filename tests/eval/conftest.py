"""Fixtures of the RCI evaluation tests: the training tests' tiny world, plus a fresh MLflow store."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.eval.test_speed import QUICK_SPEED
from tests.training.conftest import one_torch_thread, rci_config, rci_world, trained_teacher  # noqa: F401  (fixtures)


@pytest.fixture
def mlflow_cfg(monkeypatch: pytest.MonkeyPatch):
    """A tiny-model config (quick speed measurement) whose MLflow store is a fresh SQLite file (on /dev/shm when available)."""
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    work = Path(tempfile.mkdtemp(prefix="clipguard-rci-", dir="/dev/shm" if os.access("/dev/shm", os.W_OK) else None))
    yield rci_config(work, **QUICK_SPEED)
    import mlflow

    while mlflow.active_run() is not None:
        mlflow.end_run()
    logger.setLevel(level)
    shutil.rmtree(work, ignore_errors=True)
