"""The import contract of ARCHITECTURE.md (``[tool.importlinter]`` in pyproject.toml): layers
point one way and no package has an import cycle between its modules. The contract is checked
on the real package, and shown to fail on a copy with one upward import or one cycle."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(cwd / "pyproject.toml"), "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "clipguard", tmp_path / "clipguard", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_repository_keeps_its_import_contract() -> None:
    run = _lint_imports(REPO)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 kept, 0 broken" in run.stdout


@pytest.mark.parametrize(
    "module,line,broken",
    [
        # the base layer reaching up into the registry (a function-level import counts too)
        ("core/io.py", "\ndef _up():\n    from clipguard.registry import versions  # noqa\n", "clipguard layers point one way"),
        # training (below eval) importing the evaluation
        ("training/loop.py", "\nimport clipguard.eval.protocol  # noqa\n", "clipguard layers point one way"),
        # a cycle inside one package: protocol <- evaluate already, so protocol -> evaluate closes it
        ("eval/protocol.py", "\nimport clipguard.eval.evaluate  # noqa\n", "no import cycles between the modules of a package"),
    ],
)
def test_the_contract_fails_on_an_upward_import_or_a_cycle(tmp_path, module, line, broken) -> None:
    copy = _copy(tmp_path)
    target = copy / "clipguard" / module
    target.write_text(target.read_text() + line)
    run = _lint_imports(copy)
    assert run.returncode != 0
    assert f"{broken} BROKEN" in run.stdout, run.stdout
