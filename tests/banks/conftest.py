"""Fixtures of the bank tests: a bank database on SQLite, and the same on a real PostgreSQL.

``store`` runs a test on both: a SQLite file in the test's folder, and a fresh PostgreSQL
database (:func:`tests.services.fresh_database`; a missing server fails the test, naming it).
``sqlite_store`` is the SQLite one alone (the index tests).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from clipguard.banks import BankStore, ClipEmbeddings
from tests.services import fresh_database

DIM = 16


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BankStore]:
    if request.param == "sqlite":
        s = BankStore(f"sqlite:///{tmp_path / 'banks.db'}")
        yield s
        s.close()
        return
    with fresh_database("clipguard_banks") as url:
        s = BankStore(url)
        yield s
        s.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[BankStore]:
    s = BankStore(f"sqlite:///{tmp_path / 'banks.db'}")
    yield s
    s.close()


def random_embeddings(n: int, seed: int = 0, dim: int = DIM) -> ClipEmbeddings:
    """``n`` random clips ``c0 .. c{n-1}`` (isotropic Gaussian: every clip is its own nearest neighbour)."""
    rng = np.random.default_rng(seed)
    return ClipEmbeddings([f"c{i}" for i in range(n)], rng.standard_normal((n, dim)).astype(np.float32))
