"""RCI service benchmark: rci/score from cached features, adaptive batching on vs off, in one run.

TARGETS.md: "service rci/score, cached features: p99 < 50 ms at 100 requests/s; adaptive
batching >= 3x the throughput of batching off" and "service under 2x the target load: no
errors other than explicit 429/503, p99 < 2x target".

The run builds a synthetic feature version (``--clips`` clips with the ``local`` profile's
token widths: 20 frames, 20 audio tokens, 8-64 text tokens, float16 shards) and a random
``local``-profile student, then for each mode (``batching`` on, then off) starts the service
with :func:`clipguard.serving.launch.local_server` on 127.0.0.1 and drives ``/rci/score``
with random clip pairs from an asyncio ``aiohttp`` client (lighter than ``httpx``, which
matters on a 2-core machine the generator shares with the service):

1. warm-up: ``--warmup-s`` seconds closed-loop (dispatcher training, token cache fill);
2. open loop at ``--rate`` requests/s for ``--duration`` s (requests leave on a fixed
   schedule whatever the answers; latency counts from the scheduled send time, so a
   lagging client or server cannot hide queueing);
3. open loop at 2x ``--rate`` for ``--duration`` s;
4. saturation: ``--concurrency`` clients back to back for ``--saturation-s`` s (a client
   refused with 429/503 pauses ``--backoff-ms``): the throughput the batching target compares.

For every phase it reports requests sent, status counts, errors other than 429/503,
p50/p90/p99/max latency (of all answers and of the 200s), throughput, the mean adaptive
batch size (from ``/health``'s counters) and the CPU time per request of the server
processes and of the load generator (which shares the machine). Every phase is
bounded in time and requests; only 127.0.0.1 is contacted. The machine's load average is
recorded: on a shared machine wall-clock latencies are inflated, CPU time per request much less.

Usage::

    .venv/bin/python benchmarks/bench_service.py [--rate 100] [--duration 20] [--out benchmarks/results/service.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from clipguard.config import Config, load_config
from clipguard.encoders.runtime import available_cpus
from clipguard.serving.launch import LocalServer, local_server

TARGET_P99_MS = 50.0
TARGET_RATE = 100.0
TARGET_BATCHING_SPEEDUP = 3.0
OVERLOAD_OK = {200, 429, 503}
ENCODER_VERSION = "ebench"


# --------------------------------------------------------------------------- fixture


def write_features(root: Path, n_clips: int, cfg: Config, seed: int = 0) -> Path:
    """A feature version directory in the layout of :mod:`clipguard.features.store_format`."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import torch
    from safetensors.torch import save_file

    from clipguard.features.store_format import CLIP_FEATURES_SCHEMA, FEATURES_FILE, MANIFEST_FILE, array_key, shard_name

    s = cfg.models.student
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    out = root / ENCODER_VERSION
    (out / "arrays").mkdir(parents=True, exist_ok=True)
    now = time.time()
    rows, arrays, shard = [], {}, 0
    for i in range(n_clips):
        clip_id = f"clip{i:06d}"
        n_txt = int(rng.integers(8, 65))
        tokens = {
            "visual": torch.randn(20, s.visual_dim, generator=gen),
            "audio": torch.randn(20, s.audio_dim, generator=gen),
            "text": torch.randn(n_txt, s.text_dim, generator=gen),
        }
        arrays.update({array_key(clip_id, m): t.half() for m, t in tokens.items()})
        emb = tokens["visual"].mean(0)[: cfg.encoders.embedding_dim]
        rows.append(
            {
                "clip_id": clip_id,
                "video_uri": f"videos/v{i:06d}.mp4",
                "event_timestamp": now,
                "created_timestamp": now,
                "encoder_version": ENCODER_VERSION,
                "data_version": "dbench",
                "visual_pooled": tokens["visual"].mean(0).numpy(),
                "audio_pooled": tokens["audio"].mean(0).numpy(),
                "text_pooled": tokens["text"].mean(0).numpy(),
                "clip_embedding": (emb / emb.norm()).numpy(),
                "n_frames": 20,
                "n_audio_tokens": 20,
                "n_text_tokens": n_txt,
                "has_audio": True,
                "array_file": shard_name(shard),
            }
        )
        if len(arrays) >= 3 * cfg.features.shard_clips or i == n_clips - 1:
            save_file(arrays, str(out / shard_name(shard)))
            arrays, shard = {}, shard + 1
    table = pa.Table.from_pylist(
        [{**r, "event_timestamp": _ts(r["event_timestamp"]), "created_timestamp": _ts(r["created_timestamp"])} for r in rows],
        schema=CLIP_FEATURES_SCHEMA,
    )
    pq.write_table(table, out / FEATURES_FILE)
    (out / MANIFEST_FILE).write_text(json.dumps({"encoder_version": ENCODER_VERSION, "clips": n_clips}))
    return out


def _ts(seconds: float) -> Any:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def write_student(directory: Path, cfg: Config, seed: int = 0) -> Path:
    """A randomly initialised ``local``-profile MatchLite (weights do not change its speed)."""
    import torch

    from clipguard.models.matchlite import MatchLiteConfig, MatchLiteForPairClassification

    torch.manual_seed(seed)
    return MatchLiteForPairClassification(MatchLiteConfig.from_settings(cfg.models)).eval().save_pretrained(directory)


# --------------------------------------------------------------------------- load


class Recorder:
    """Latencies and status counts of one phase (client exceptions are counted by type)."""

    def __init__(self) -> None:
        self.all_ms: list[float] = []
        self.ok_ms: list[float] = []
        self.statuses: dict[str, int] = {}

    @property
    def refused(self) -> int:
        """Answers 429/503 so far."""
        return self.statuses.get("429", 0) + self.statuses.get("503", 0)

    def add(self, status: str, seconds: float) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.all_ms.append(seconds * 1e3)
        if status == "200":
            self.ok_ms.append(seconds * 1e3)

    def summary(self, sent: int, seconds: float) -> dict[str, Any]:
        def pct(values: list[float]) -> dict[str, float]:
            if not values:
                return {}
            a = np.asarray(values)
            return {
                "p50_ms": _r(np.percentile(a, 50)),
                "p90_ms": _r(np.percentile(a, 90)),
                "p99_ms": _r(np.percentile(a, 99)),
                "max_ms": _r(a.max()),
            }

        ok = self.statuses.get("200", 0)
        return {
            "sent": sent,
            "statuses": dict(sorted(self.statuses.items())),
            "unexpected_errors": sum(v for k, v in self.statuses.items() if not (k.isdigit() and int(k) in OVERLOAD_OK)),
            "seconds": _r(seconds),
            "throughput_rps": _r(ok / seconds) if seconds > 0 else 0.0,
            "latency_ok": pct(self.ok_ms),
            "latency_all": pct(self.all_ms),
        }


def _r(x: float) -> float:
    return round(float(x), 2)


async def _request(session: Any, pair: tuple[str, str], rec: Recorder, t_start: float) -> None:
    import aiohttp

    body = {"pairs": [{"query_clip_id": pair[0], "candidate_clip_id": pair[1]}]}
    try:
        async with session.post("/rci/score", json=body) as r:
            await r.read()
            status = str(r.status)
    except (aiohttp.ClientError, asyncio.TimeoutError) as e:
        status = f"client_{type(e).__name__}"
    rec.add(status, time.perf_counter() - t_start)


def _session(url: str, connections: int, timeout_s: float) -> Any:
    """An aiohttp session: the lightest asyncio HTTP client here (the generator shares the CPUs)."""
    import aiohttp

    return aiohttp.ClientSession(
        base_url=url,
        timeout=aiohttp.ClientTimeout(total=timeout_s),
        connector=aiohttp.TCPConnector(limit=connections),
    )


async def open_loop(url: str, pairs: list[tuple[str, str]], rate: float, seconds: float, timeout_s: float) -> dict[str, Any]:
    """Send ``rate`` requests/s on a fixed schedule for ``seconds``; latency from the scheduled time."""
    rec = Recorder()
    n = int(rate * seconds)
    lag = []
    async with _session(url, 512, timeout_s) as client:
        t0 = time.perf_counter()
        tasks = []
        for i in range(n):
            scheduled = t0 + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            lag.append(time.perf_counter() - scheduled)
            tasks.append(asyncio.create_task(_request(client, pairs[i % len(pairs)], rec, scheduled)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - t0
    out = rec.summary(n, elapsed)
    out["offered_rps"] = rate
    out["client_send_lag_p99_ms"] = _r(np.percentile(np.asarray(lag) * 1e3, 99))
    return out


async def closed_loop(
    url: str, pairs: list[tuple[str, str]], concurrency: int, seconds: float, timeout_s: float, backoff_s: float
) -> dict[str, Any]:
    """``concurrency`` clients, each sending its next request when the last one is answered
    (after ``backoff_s`` when it was refused with 429/503, as a well-behaved client does)."""
    rec = Recorder()
    sent = 0
    async with _session(url, concurrency, timeout_s) as client:
        t0 = time.perf_counter()
        deadline = t0 + seconds

        async def worker(k: int) -> None:
            nonlocal sent
            i = k
            while time.perf_counter() < deadline:
                sent += 1
                refused = rec.refused
                await _request(client, pairs[i % len(pairs)], rec, time.perf_counter())
                i += concurrency
                if rec.refused > refused:
                    await asyncio.sleep(backoff_s)

        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        elapsed = time.perf_counter() - t0
    out = rec.summary(sent, elapsed)
    out["concurrency"] = concurrency
    return out


# --------------------------------------------------------------------------- server side


def _server_cpu_s(server: LocalServer) -> float:
    """CPU seconds used so far by the server process and its children (arbiter, workers)."""
    import psutil

    try:
        root = psutil.Process(server.process.pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.NoSuchProcess:
            continue
    return total


def _health(url: str) -> dict[str, Any]:
    import httpx

    return httpx.post(f"{url}/health", json={}, timeout=30).json()


async def _phase(server: LocalServer, name: str, run: Any, workers: int = 1) -> dict[str, Any]:
    before, cpu0, client0 = _health(server.url), _server_cpu_s(server), time.process_time()
    result = await run
    after, cpu1, client1 = _health(server.url), _server_cpu_s(server), time.process_time()
    calls = after["score_calls"] - before["score_calls"]
    pairs = after["scored_pairs"] - before["scored_pairs"]
    # /health answers from one worker: its counters are that worker's only
    result["mean_batch_size"] = _r(pairs / calls) if calls and workers == 1 else None
    answered = sum(v for k, v in result["statuses"].items() if k.isdigit())
    ok = result["statuses"].get("200", 0)
    result["server_cpu_ms_per_request"] = _r((cpu1 - cpu0) * 1e3 / answered) if answered else None
    result["server_cpu_ms_per_ok"] = _r((cpu1 - cpu0) * 1e3 / ok) if ok else None
    result["client_cpu_ms_per_request"] = _r((client1 - client0) * 1e3 / max(result["sent"], 1))
    print(f"  {name}: {json.dumps(result)}", flush=True)
    return result


async def run_mode(server: LocalServer, pairs: list[tuple[str, str]], args: argparse.Namespace) -> dict[str, Any]:
    """Warm-up, target rate, 2x rate, saturation against one running service."""
    timeout = args.client_timeout_s
    backoff = args.backoff_ms / 1e3
    await closed_loop(server.url, pairs, 16, args.warmup_s, timeout, backoff)
    w = args.workers
    return {
        "target_rate": await _phase(server, "target", open_loop(server.url, pairs, args.rate, args.duration, timeout), w),
        "double_rate": await _phase(server, "2x", open_loop(server.url, pairs, 2 * args.rate, args.duration, timeout), w),
        "saturation": await _phase(
            server, "saturation", closed_loop(server.url, pairs, args.concurrency, args.saturation_s, timeout, backoff), w
        ),
        "health": _health(server.url),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=int, default=1000, help="clips in the synthetic feature version")
    ap.add_argument("--rate", type=float, default=TARGET_RATE, help="target request rate (the 2x phase doubles it)")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds of each open-loop phase")
    ap.add_argument("--saturation-s", type=float, default=15.0, help="seconds of the closed-loop saturation phase")
    ap.add_argument("--warmup-s", type=float, default=5.0)
    ap.add_argument(
        "--concurrency", type=int, default=None, help="clients of the saturation phase (default: serving.max_concurrency)"
    )
    ap.add_argument("--client-timeout-s", type=float, default=30.0)
    ap.add_argument("--backoff-ms", type=float, default=50.0, help="closed-loop client pause after a 429/503")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra service config (bento argument)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/service.json"))
    args = ap.parse_args()

    from clipguard.config import parse_overrides

    extra = parse_overrides(args.set)
    cfg = load_config("local", extra)
    args.concurrency = args.concurrency or cfg.serving.max_concurrency
    args.workers = cfg.serving.workers
    rng = random.Random(0)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="clipguard-bench-service-") as tmp:
        base = Path(tmp)
        t0 = time.perf_counter()
        features = write_features(base / "features", args.clips, cfg)
        student = write_student(base / "student", cfg)
        ids = [f"clip{i:06d}" for i in range(args.clips)]
        pairs = [(rng.choice(ids), rng.choice(ids)) for _ in range(50_000)]
        print(f"fixture: {args.clips} clips, student {student} ({time.perf_counter() - t0:.1f} s)", flush=True)
        modes = {}
        for batching in (True, False):
            name = "batching_on" if batching else "batching_off"
            service_args = {
                "profile": "local",
                "work_dir": str(base / "runs"),
                "rci.model_uri": str(student),
                "serving.features_dir": str(features),
                "serving.batching": batching,
                "serving.reload_interval_s": 0,
                **extra,
            }
            print(f"{name}: starting the service", flush=True)
            with local_server(service_args, base / f"{name}.log") as server:
                modes[name] = asyncio.run(run_mode(server, pairs, args))
    load_after = os.getloadavg()

    on, off = modes["batching_on"], modes["batching_off"]
    speedup = on["saturation"]["throughput_rps"] / max(off["saturation"]["throughput_rps"], 1e-9)
    p99_target = on["target_rate"]["latency_all"].get("p99_ms", float("inf"))
    overload = on["double_rate"]
    overload_p99 = overload["latency_all"].get("p99_ms", float("inf"))
    checks = {
        "p99_at_target_rate": {
            "value_ms": p99_target,
            "target": f"< {TARGET_P99_MS} ms at {args.rate:g} req/s (batching on)",
            "pass": p99_target < TARGET_P99_MS and on["target_rate"]["unexpected_errors"] == 0,
        },
        "batching_speedup": {
            "value": _r(speedup),
            "target": f">= {TARGET_BATCHING_SPEEDUP}x saturation throughput of batching off",
            "pass": speedup >= TARGET_BATCHING_SPEEDUP,
        },
        "double_rate_errors": {
            "value": overload["unexpected_errors"],
            "target": "no errors other than 429/503 at 2x the target rate (batching on)",
            "pass": overload["unexpected_errors"] == 0,
        },
        "double_rate_p99": {
            "value_ms": overload_p99,
            "target": f"< {2 * TARGET_P99_MS} ms at {2 * args.rate:g} req/s (batching on)",
            "pass": overload_p99 < 2 * TARGET_P99_MS,
        },
    }
    result = {
        "benchmark": "service_rci_score",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": {
            "cpus": os.cpu_count(),
            "affinity": len(os.sched_getaffinity(0)),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in load_after],
        },
        "service": {
            "student": "local profile MatchLite, random init",
            "clips": args.clips,
            "max_batch_size": cfg.serving.max_batch_size,
            "max_latency_ms": cfg.serving.max_latency_ms,
            "max_concurrency": cfg.serving.max_concurrency,
            "workers": cfg.serving.workers,
            "torch_threads": cfg.serving.torch_threads or max(1, available_cpus() - 1),
            "extra_config": extra,
        },
        "modes": modes,
        "checks": checks,
        "pass": all(c["pass"] for c in checks.values()),
        "efficiency": {
            "server_cpu_ms_per_ok_saturation": {
                "batching_on": on["saturation"]["server_cpu_ms_per_ok"],
                "batching_off": off["saturation"]["server_cpu_ms_per_ok"],
            },
            "cpu_normalised_speedup": _r(off["saturation"]["server_cpu_ms_per_ok"] / on["saturation"]["server_cpu_ms_per_ok"])
            if on["saturation"]["server_cpu_ms_per_ok"] and off["saturation"]["server_cpu_ms_per_ok"]
            else None,
            "note": "server CPU time per successful request at saturation; on a shared machine this "
            "ratio depends far less on other tenants than wall-clock throughput does",
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
