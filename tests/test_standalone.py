"""The installed library stands alone: a wheel built from the checkout, installed into a fresh
venv and run from a folder outside the checkout, runs ``clipguard --help``, ``data synth`` and
``rci score`` (profiles, policy and pipelines come from the package, not from the checkout).

The fresh venv gets its third-party dependencies from this test's environment through a
``.pth`` line (re-installing torch & co. would take minutes); ``clipguard`` itself, its
``components`` and ``pipelines`` come only from the wheel, which the test checks.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.pipelines.test_local_run import TINY_SYNTH
from tests.rci.conftest import rci_config, rci_env, rci_media  # noqa: F401  (fixtures)

REPO = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    run = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert run.returncode == 0, f"{' '.join(map(str, cmd))} exited {run.returncode}:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    return run


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """(the fresh venv's python, the environment to run it with)."""
    tmp = tmp_path_factory.mktemp("standalone")
    wheels = tmp / "wheels"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    source = tmp / "source"  # a clean copy: setuptools' build/ of the checkout may hold stale modules
    for name in ("clipguard", "components", "pipelines"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(source)],
        tmp,
        env,
    )
    (wheel,) = wheels.glob("clipguard-*.whl")
    venv = tmp / "venv"
    _run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip", str(venv)], tmp, env)
    python = venv / "bin" / "python"
    purelib = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], tmp, env).stdout.strip())
    (purelib / "clipguard_test_deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index", str(wheel)], tmp, env)
    return python, env


def test_the_wheel_runs_outside_the_checkout(installed, tmp_path, rci_env, rci_media) -> None:
    python, env = installed
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    clipguard = [str(python.parent / "clipguard")]

    where = _run(
        [
            str(python),
            "-c",
            "import clipguard, components, pipelines, clipguard.registry.gate as g; "
            "print(clipguard.__file__); print(pipelines.__file__); print(g.policy_path())",
        ],
        outside,
        env,
    ).stdout.split()
    venv = python.parents[1]
    assert all(Path(p).is_relative_to(venv) for p in where), where  # nothing from the checkout
    assert not any(str(REPO) in p for p in where)

    usage = _run([*clipguard, "--help"], outside, env).stdout
    assert all(command in usage for command in ("data", "rci", "pipelines", "demo")), usage

    # a profile of test sizes in a config folder of our own (the packaged profiles otherwise)
    cfg, enc_dir, student_dir = rci_env
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    raw = rci_config(tmp_path / "runs").model_dump(mode="json")
    raw.pop("profile", None)
    (profiles / "tiny.yaml").write_text(yaml.safe_dump(raw))
    tiny = {**env, "CLIPGUARD_CONFIG_DIR": str(profiles), "MLFLOW_DISABLE_TELEMETRY": "true"}
    sets = [a for k, v in TINY_SYNTH.items() for a in ("--set", f"{k}={v}")]
    _run(
        [*clipguard, "--profile", "tiny", *sets, "data", "synth", "--out", str(outside / "corpus"), "--seed", "0"],
        outside,
        tiny,
        timeout=600,
    )
    manifests = list((outside / "corpus").rglob("*.parquet"))
    videos = list((outside / "corpus").rglob("*.mp4"))
    assert manifests and videos

    pairs = outside / "pairs.csv"
    pd.DataFrame(
        {
            "query_path": [str(rci_media / "videos" / "astronaut_copy.mp4"), str(rci_media / "videos" / "missing.mp4")],
            "candidate_path": [str(rci_media / "videos" / "astronaut.mp4"), str(rci_media / "videos" / "coffee.mp4")],
        }
    ).to_csv(pairs, index=False)
    _run(
        [
            *clipguard,
            "--profile",
            "tiny",
            "rci",
            "score",
            "--pairs",
            str(pairs),
            "--out",
            str(outside / "scores.csv"),
            "--model",
            str(student_dir),
            "--encoder-dir",
            str(enc_dir),
        ],
        outside,
        tiny,
    )
    scores = pd.read_csv(outside / "scores.csv", keep_default_na=False)
    assert len(scores) == 2
    assert scores.loc[0, "error"] == "" and 0.0 <= float(scores.loc[0, "score"]) <= 1.0
    assert "missing.mp4" in scores.loc[1, "error"]
