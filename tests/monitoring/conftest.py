"""Fixtures of the monitoring tests: synthetic traffic, one drift timeline, a local webhook receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from clipguard.config import DriftConfig
from clipguard.monitoring.drift import DriftResult, Projection, drift_timeline, fit_projection
from tests.monitoring.synth import World, make_clips, make_traffic, make_world

TREND_DAY = "2026-11-03"
SMALL_DAY = "2026-10-31"


@pytest.fixture(scope="session")
def world() -> World:
    return make_world(0)


@pytest.fixture(scope="session")
def reference_df(world: World) -> pd.DataFrame:
    """The training reference: 4 ordinary days of 200 clips."""
    return pd.concat([make_clips(world, 200, seed=10 + i, day=f"2026-10-2{i}") for i in range(4)], ignore_index=True)


@pytest.fixture(scope="session")
def traffic_df(world: World) -> pd.DataFrame:
    """A day of 20 clips (too few to evaluate), 2 ordinary days, then the trend day (30% trend)."""
    small = make_clips(world, 20, seed=99, day=SMALL_DAY)
    return pd.concat([small, make_traffic(world, days=3, trend_day=2, per_day=250)], ignore_index=True)


@pytest.fixture(scope="session")
def projection(reference_df: pd.DataFrame) -> Projection:
    return fit_projection(reference_df, DriftConfig().projection_dims)


@dataclass
class Timeline:
    out_dir: Path
    results: list[DriftResult]

    def day(self, period: str) -> DriftResult:
        return next(r for r in self.results if r.period == period)


@pytest.fixture(scope="session")
def timeline(
    tmp_path_factory: pytest.TempPathFactory,
    reference_df: pd.DataFrame,
    traffic_df: pd.DataFrame,
    projection: Projection,
) -> Timeline:
    """``drift_timeline`` with the default config, run once for all drift tests."""
    out = tmp_path_factory.mktemp("drift")
    return Timeline(out, drift_timeline(reference_df, traffic_df, projection, DriftConfig(), out))


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1: answers ``statuses`` in order (then 200), records requests."""

    url: str
    statuses: list[int] = field(default_factory=list)
    delay_s: float = 0.0
    requests: list[dict] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server API
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.requests.append(json.loads(body))
            state.headers.append(dict(self.headers))
            if state.delay_s:
                threading.Event().wait(state.delay_s)
            status = state.statuses.pop(0) if state.statuses else 200
            try:
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                pass

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/alertmanager"
    yield state
    server.shutdown()
    server.server_close()
