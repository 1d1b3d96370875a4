"""Run the RCI service locally: the ``bentoml serve`` command line, and a managed server process.

:func:`serve_command` is what ``clipguard serve`` and ``make serve`` run;
:func:`local_server` starts that command as a child process on 127.0.0.1, waits until
``/readyz`` answers (the model is loaded), yields a :class:`LocalServer` and stops the
process again — the tests and ``benchmarks/bench_service.py`` use it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SERVICE = "clipguard.serving.service:ClipGuard"
"""Import path of the entry service (also the ``service`` of bentofile.yaml)."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _arg_value(value: Any) -> str:
    """A bento argument value as text (read back as YAML by ``config_from_arguments``)."""
    if isinstance(value, str):
        return value
    return json.dumps(value)


def serve_command(arguments: Mapping[str, Any], host: str = "127.0.0.1", port: int = 3000) -> list[str]:
    """``python -m bentoml serve <service> --host --port --arg key=value ...``.

    ``arguments`` are the bento arguments: ``profile`` and dotted config keys.
    """
    cmd = [sys.executable, "-m", "bentoml", "serve", SERVICE, "--host", host, "--port", str(port)]
    for key, value in arguments.items():
        if value is not None:
            cmd += ["--arg", f"{key}={_arg_value(value)}"]
    return cmd


@dataclass
class LocalServer:
    """A service started by :func:`local_server`."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server's combined stdout/stderr."""
        text = self.log_path.read_text(errors="replace") if self.log_path.is_file() else ""
        return text[-chars:]


def _stop(process: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM the server (BentoML's arbiter stops its workers), then SIGKILL its process group."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # the session this function created
        process.wait(timeout=grace_s)


@contextlib.contextmanager
def local_server(
    arguments: Mapping[str, Any],
    log_path: str | Path,
    port: int | None = None,
    ready_timeout_s: float = 180.0,
    env: Mapping[str, str] | None = None,
) -> Iterator[LocalServer]:
    """Start the service on 127.0.0.1, wait until it is ready, stop it on exit. ``env`` is
    added to this process's environment (e.g. ``CLIPGUARD_ADMIN_TOKEN``).

    Raises:
        RuntimeError: the server exited, its model failed to load, or it was not ready
            within ``ready_timeout_s`` (the message holds the reason or the end of its log).
    """
    port = port or free_port()
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = serve_command(arguments, "127.0.0.1", port)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {}), "BENTOML_DO_NOT_TRACK": "True"},
            start_new_session=True,
        )
    server = LocalServer(f"http://127.0.0.1:{port}", process, log_path)
    try:
        deadline = time.monotonic() + ready_timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the service exited with code {process.returncode}:\n{server.log_tail()}")
            state = _state(server.url)
            if state == "ready":
                break
            if state == "failed":
                raise RuntimeError(f"the service could not load its model:\n{server.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the service was not ready after {ready_timeout_s:.0f} s:\n{server.log_tail()}")
            time.sleep(0.25)
        yield server
    finally:
        _stop(process, grace_s=20.0)


def _state(url: str) -> str:
    """``ready`` once ``GET /readyz`` answers 200, ``failed`` when ``/health`` says loading failed,
    else ``starting``."""
    import httpx

    try:
        if httpx.get(f"{url}/readyz", timeout=2.0).status_code == 200:
            return "ready"
        health = httpx.post(f"{url}/health", json={}, timeout=2.0)
        return "failed" if health.status_code == 200 and health.json().get("status") == "failed" else "starting"
    except httpx.HTTPError:
        return "starting"
