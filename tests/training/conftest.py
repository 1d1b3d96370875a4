"""Fixtures of the RCI training tests: a tiny data root + features, tiny model sizes, a trained teacher.

The world and the teacher are built once per session even when another conftest
(``tests/eval``) re-exports these fixtures: they are memoised at module level.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from clipguard.config import Config, load_config
from tests.rci_fixtures import TINY_RCI_OVERRIDES, RCIWorld, build_rci_root

_SESSION: dict[str, Any] = {}


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """Tiny models gain nothing from intra-op threads, and a thread pool on a busy machine costs seconds."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def rci_config(work_dir: Path, **overrides: Any) -> Config:
    """The tiny-model configuration with its runs under ``work_dir``."""
    return load_config("local", overrides={**TINY_RCI_OVERRIDES, "work_dir": str(work_dir), **overrides})


@pytest.fixture(scope="session")
def rci_world(tmp_path_factory: pytest.TempPathFactory) -> RCIWorld:
    if "world" not in _SESSION:
        _SESSION["world"] = build_rci_root(tmp_path_factory.mktemp("rci"))
    return _SESSION["world"]


@pytest.fixture
def rci_cfg(tmp_path: Path) -> Config:
    return rci_config(tmp_path / "runs")


@pytest.fixture(scope="session")
def trained_teacher(rci_world: RCIWorld, tmp_path_factory: pytest.TempPathFactory):
    """A tiny teacher trained once per session, and the config it was trained with."""
    from clipguard.training.teacher import train_teacher

    if "teacher" not in _SESSION:
        cfg = rci_config(tmp_path_factory.mktemp("teacher_runs"))
        _SESSION["teacher"] = (train_teacher(rci_world.root, cfg, progress=False, track=False), cfg)
    return _SESSION["teacher"]
