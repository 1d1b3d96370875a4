"""Fixtures of the pipeline tests: the pipelines compiled once per session into a temp folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


IMAGE_ENV = ("CLIPGUARD_IMAGE", "CLIPGUARD_GPU_IMAGE")


@pytest.fixture(scope="session")
def fresh_compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every pipeline compiled now, in clean interpreters without image overrides (as ``make
    compile``): the ``cpu`` target in the folder, the ``gpu`` target in its ``gpu/``."""
    out = tmp_path_factory.mktemp("compiled")
    env = {k: v for k, v in os.environ.items() if k not in (*IMAGE_ENV, "CLIPGUARD_COMPILE_TARGET")}
    for target, folder in (("cpu", out), ("gpu", out / "gpu")):
        subprocess.run(
            [sys.executable, "-m", "pipelines.compile", "--target", target, "--out", str(folder)],
            cwd=REPO_ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
    return out
