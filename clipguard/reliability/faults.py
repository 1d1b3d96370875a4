"""The service under load with faults: a worker killed and the champion changed mid-load.

:func:`service_under_faults` registers two students (MLflow registry of the configuration),
promotes the first, and starts the BentoML service on ``models:/<student>@champion`` with two
workers and a short alias check. Client threads then send ``rci/score`` requests back to back;
part-way through, one worker process is killed (SIGKILL), later the second student is
promoted. Every answer is checked against the score the version it names gives that pair
(computed in this process, before the load, by :class:`clipguard.serving.runtime.ServingRuntime`):

* an answer that names no version, or a version whose score differs, is **wrong**;
* a 200 is the only success; 429/503 are explicit refusals (counted); any other status is an
  error;
* a request whose connection the killed worker dropped is retried once by the client (scoring
  is idempotent); it **failed** only if the retry fails too.

After the promotion the champion must take over: the last answers all name the new version.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REFUSALS = {429, 503}


@dataclass
class FaultReport:
    """What the clients saw, and what was done to the service."""

    requests: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    retried: int = 0
    """requests whose first attempt lost its connection (the killed worker's)"""
    failed: int = 0
    """requests with no answer after the retry, or answered with a status other than 200/429/503"""
    wrong: int = 0
    """200s that name no version, or whose score is not the named version's"""
    versions: dict[str, int] = field(default_factory=dict)
    last_versions: list[str] = field(default_factory=list)
    """versions named by the last answers (after the promotion has settled)"""
    workers_before: list[int] = field(default_factory=list)
    workers_after: list[int] = field(default_factory=list)
    """worker pids when the load ended (the supervisor restarts the killed one)"""
    killed_worker: int | None = None
    worker_kill_s: float | None = None
    promotion_s: float | None = None
    first_new_version_s: float | None = None
    """seconds after the promotion until the first answer named the new champion"""
    p99_ms: float | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """No failed and no wrong answer, a worker was killed, and the new champion took over."""
        new = self.settings.get("new_version")
        return self.failed == 0 and self.wrong == 0 and self.killed_worker is not None and self.last_versions == [new]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def _worker_pids(pid: int) -> list[int]:
    """The service's worker processes: the children of its process tree that run a BentoML
    service worker (not the supervisor itself)."""
    import psutil

    out = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            cmdline = " ".join(child.cmdline())
        except psutil.Error:
            continue
        if "worker" in cmdline and "service" in cmdline:
            out.append(child.pid)
    return sorted(out)


def _expected_scores(cfg: Any, model_uri: str, pairs: Sequence[tuple[str, str]]) -> tuple[str, dict[tuple[str, str], float]]:
    from clipguard.serving.runtime import ServingRuntime

    rt = ServingRuntime(cfg.model_copy(update={"rci": cfg.rci.model_copy(update={"model_uri": model_uri})}))
    rt.load()
    scores = rt.score_pairs(list(pairs))
    return str(scores[0].model_version), {pair: s.score for pair, s in zip(pairs, scores)}


def service_under_faults(
    work: str | Path,
    profile: str,
    overrides: Mapping[str, Any],
    student_dirs: Sequence[Path],
    features_dir: Path,
    encoder_version: str,
    duration_s: float = 16.0,
    clients: int = 4,
    kill_at: float = 0.25,
    promote_at: float = 0.5,
    settle_s: float = 4.0,
) -> FaultReport:
    """Run the load with a worker kill at ``kill_at`` and a promotion at ``promote_at`` (shares of
    ``duration_s``); see the module docstring. ``student_dirs`` are two saved students that fit
    ``features_dir`` (extracted with ``encoder_version``)."""
    import httpx

    from clipguard.config import load_config
    from clipguard.features.store_format import read_clip_features
    from clipguard.registry import Lineage, log_model, promote, registered_model_name
    from clipguard.registry.register import STUDENT_LOADER
    from clipguard.serving.launch import local_server

    work = Path(work)
    token = "faults-" + os.urandom(8).hex()
    base = {
        **dict(overrides),
        "work_dir": str(work / "runs"),
        "serving.features_dir": str(features_dir),
        "serving.workers": 2,
        "serving.reload_interval_s": 0.5,
        "serving.max_latency_ms": 10_000,
    }
    cfg = load_config(profile, base)
    name = registered_model_name("student", cfg)
    versions: list[str] = []
    for d in student_dirs:
        logged = log_model(
            "student",
            d / "model.safetensors",
            d / "config.json",
            cfg=cfg,
            loader=STUDENT_LOADER,
            metrics={"threshold": 0.5},
            lineage=Lineage(encoder_version=encoder_version),
        )
        versions.append(str(logged.version))
    promote("student", versions[0], force=True, cfg=cfg)

    clip_ids = sorted(read_clip_features(features_dir, ["clip_id"])["clip_id"])
    pairs = [(a, b) for a in clip_ids for b in clip_ids if a != b][:64]
    expected: dict[str, dict[tuple[str, str], float]] = {}
    for v in versions:
        label, scores = _expected_scores(cfg, f"models:/{name}/{v}", pairs)
        expected[label] = scores
    old, new = (f"{name}/{v}" for v in versions)

    report = FaultReport(settings={"duration_s": duration_s, "clients": clients, "workers": 2, "pairs": len(pairs)})
    lock = threading.Lock()
    latencies: list[float] = []
    answers: list[tuple[float, str]] = []
    statuses: Counter[str] = Counter()
    arguments = {"profile": profile, **base, "rci.model_uri": f"models:/{name}@champion"}
    with local_server(arguments, work / "faults-service.log", env={"CLIPGUARD_ADMIN_TOKEN": token}) as server:
        t0 = time.monotonic()
        stop = t0 + duration_s

        def client(k: int) -> None:
            i = k
            with httpx.Client(timeout=30) as http:
                while time.monotonic() < stop:
                    q, c = pairs[i % len(pairs)]
                    i += clients
                    body = {"pairs": [{"query_clip_id": q, "candidate_clip_id": c}]}
                    start = time.monotonic()
                    r = None
                    for attempt in range(2):
                        try:
                            r = http.post(f"{server.url}/rci/score", json=body)
                            break
                        except httpx.TransportError:
                            if attempt == 0:
                                with lock:
                                    report.retried += 1
                    with lock:
                        report.requests += 1
                        if r is None:
                            report.failed += 1
                            statuses["no answer"] += 1
                            continue
                        statuses[str(r.status_code)] += 1
                        latencies.append(time.monotonic() - start)
                        if r.status_code != 200:
                            report.failed += r.status_code not in REFUSALS
                            continue
                        got = r.json()[0]
                        version = got.get("model_version")
                        want = expected.get(version, {}).get((q, c))
                        if want is None or abs(float(got["score"]) - want) > 1e-5:
                            report.wrong += 1
                        answers.append((time.monotonic() - t0, str(version)))

        threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(clients)]
        for t in threads:
            t.start()
        time.sleep(duration_s * kill_at)
        workers = _worker_pids(server.process.pid)
        report.workers_before = workers
        if workers:
            report.killed_worker = workers[0]
            os.kill(workers[0], signal.SIGKILL)
            report.worker_kill_s = round(time.monotonic() - t0, 2)
        time.sleep(max(0.0, duration_s * promote_at - (time.monotonic() - t0)))
        promote("student", versions[1], force=True, cfg=cfg)
        report.promotion_s = round(time.monotonic() - t0, 2)
        for t in threads:
            t.join(timeout=duration_s + 60)
        report.workers_after = _worker_pids(server.process.pid)
    report.statuses = dict(statuses)
    report.versions = dict(Counter(v for _, v in answers))
    settled = [v for t, v in answers if report.promotion_s is not None and t > report.promotion_s + settle_s]
    report.last_versions = sorted(set(settled))
    first_new = [t for t, v in answers if v == new]
    if first_new and report.promotion_s is not None:
        report.first_new_version_s = round(min(first_new) - report.promotion_s, 2)
    if latencies:
        latencies.sort()
        report.p99_ms = round(1000 * latencies[int(0.99 * (len(latencies) - 1))], 1)
    report.settings.update({"old_version": old, "new_version": new, "settle_s": settle_s})
    return report
