"""A dead MLflow tracking server: a clear, bounded error naming it, and nothing half-done."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from clipguard.cli import app
from clipguard.config import load_config
from clipguard.registry import RegistryUnavailableError, promote
from clipguard.serving.model import parse_model_uri, resolve_registry_version


@pytest.fixture
def dead_server() -> str:
    """A 127.0.0.1 URL nothing listens on (the port was free a moment ago)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _cfg(url: str, tmp_path: Path):
    return load_config(
        "local",
        {"registry.tracking_uri": url, "registry.http_retries": 1, "registry.http_timeout_s": 1, "work_dir": str(tmp_path)},
    )


def test_promotion_against_a_dead_tracking_server_is_a_registry_error_naming_it(dead_server: str, tmp_path: Path) -> None:
    with pytest.raises(RegistryUnavailableError, match=rf"{dead_server} did not answer \(2 tries, 1 s each\)"):
        promote("student", "1", force=True, cfg=_cfg(dead_server, tmp_path))


def test_the_service_tells_a_dead_registry_from_a_missing_model(dead_server: str, tmp_path: Path) -> None:
    ref = parse_model_uri("models:/clipguard-student@champion")
    with pytest.raises(RegistryUnavailableError):  # not ModelNotFoundError: the served model is kept, the check retried
        resolve_registry_version(ref, _cfg(dead_server, tmp_path))


def test_the_cli_prints_it_without_a_traceback(dead_server: str, tmp_path: Path) -> None:
    args = [
        "--set",
        f"registry.tracking_uri={dead_server}",
        "--set",
        "registry.http_retries=0",
        "--set",
        "registry.http_timeout_s=1",
    ]
    result = CliRunner().invoke(app, [*args, "--set", f"work_dir={tmp_path}", "registry", "promote", "--version", "1", "--force"])
    assert result.exit_code == 1 and "did not answer" in result.output and "Traceback" not in result.output


def test_configuring_one_store_does_not_leak_into_the_next_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """mlflow.set_tracking_uri exports $MLFLOW_TRACKING_URI: a second work_dir in the same process
    must still get its own SQLite store, not the first one's (which may be gone by then)."""
    from clipguard.core.tracking import configure_tracking, resolve_tracking_uri

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    first = load_config("local", {"work_dir": str(tmp_path / "a")})
    second = load_config("local", {"work_dir": str(tmp_path / "b")})
    assert configure_tracking(first).tracking_uri.endswith("/a/mlflow.db")
    assert "MLFLOW_TRACKING_URI" not in os.environ
    assert resolve_tracking_uri(second).endswith("/b/mlflow.db")
    assert configure_tracking(second).tracking_uri.endswith("/b/mlflow.db")
