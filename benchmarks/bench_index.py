"""Vector index benchmark (TARGETS.md: 1M x 128-d, recall@10 >= 0.98 at >= 5,000 queries/s on
one thread, >= 100x exact search; <= 1 KB/vector for HNSW, an IVF-PQ option <= 64 B/vector).

Synthetic data stands in for a bank of clip embeddings (:class:`CopyFamilies`): sources
drawn from ``--topics`` Gaussian topics in ``--dim`` dimensions (spread ``--topic-noise``),
each present as a family of ``--family-size`` near-copies (spread ``--copy-noise``), all
L2-normalised; the ``--queries`` queries are fresh copies of random sources (a re-upload
looking for its family). ``--family-size 1`` gives a plain isotropic Gaussian mixture
instead (queries: fresh draws), the worst case for graph indexes. Ground truth is exact
inner-product search (``IndexFlatIP``).

Measured, with the library (:mod:`clipguard.index.faiss_index`) building and searching:

- HNSW (``IndexHNSWFlat`` in ``IndexIDMap2``; M and efConstruction default to
  :class:`clipguard.config.IndexConfig`'s, 32 and 200): build time on
  ``--build-threads`` threads; for each efSearch of ``--ef``: recall@10 vs exact and
  single-thread queries/s, one query per call (the serving pattern: through
  ``ClipIndex.search``, and the bare FAISS call as ``faiss_only``) and the whole batch in
  one call; bytes/vector of the serialized index (``faiss.write_index`` file size);
- exact search (``IndexFlatIP``), single thread: queries/s one query per call (on
  ``--exact-queries`` queries) and for the batch;
- HNSW cut into ``--shards`` shards (default 4), searched together and merged as
  :meth:`ClipIndex.search` does: recall@10 and single-thread queries/s for each efSearch of
  ``--shard-ef``, and the merge of the per-shard top-k (:func:`merge_topk`) timed alone
  (microseconds per query and its share of the search): what fanning a query out to N
  shard servers costs on top of the shards' own searches, network left out;
- IVF-PQ (``[OPQ,]IVF{nlist},PQ{m}x8[,Refine(SQfp16)]``, defaults from ``IndexConfig``;
  ``--refine sqfp16`` keeps an fp16 copy of each vector to re-score the PQ candidates):
  train + build time, bytes/vector on disk and resident once loaded (the fp16 copies are
  memory-mapped, so only re-scored candidates are paged in), and recall@10 / single-thread
  queries/s for each nprobe of ``--nprobe`` and re-scoring factor of ``--refine-k-factor``
  (1: PQ's own top-k re-ordered, i.e. PQ's recall alone).

Queries/s are given as wall-clock and as the calling thread's CPU time (``thread_time``;
FAISS runs single-threaded searches in the calling thread): on a shared machine the CPU
figure depends less on other load (caches and memory bandwidth are still shared). The
machine's load average is recorded at the start and the end. ``verdict`` checks the
targets at the default efSearch (32) and at the fastest efSearch reaching the recall target.

Usage::

    .venv/bin/python benchmarks/bench_index.py [--n 1000000] [--out benchmarks/results/index.json]

At 1M vectors the HNSW builds dominate (about 4 minutes each on 2 idle threads with
efConstruction 200, 1.5 with 80; ``--shards 0`` skips the sharded one); ``--n 200000``
gives a quick run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from clipguard.config import IndexConfig
from clipguard.index.faiss_index import (
    ClipIndex,
    IndexParams,
    build_index_from_vectors,
    faiss_threads,
    load_index,
    merge_topk,
    normalize,
    search_parameters,
)

DEFAULTS = IndexConfig.model_validate({})
"""the library's default index parameters: what the benchmark measures unless told otherwise"""

TARGETS = {
    "recall_at_10": 0.98,
    "queries_per_s": 5000.0,
    "speedup_vs_exact": 100.0,
    "hnsw_bytes_per_vector": 1024.0,
    "ivfpq_bytes_per_vector": 64.0,
    "ivfpq_recall_at_10": 0.9,
}
K = 10


class CopyFamilies:
    """A bank of L2-normalised vectors in families of near-copies, and queries for it.

    ``n / family_size`` *sources* are drawn from a mixture of ``topics`` isotropic Gaussians
    (centre + ``topic_noise`` x noise, centre scale 1); the bank holds ``family_size``
    copies of each source (source + ``copy_noise`` x noise), as a bank of clips holds
    re-uploads of the same content. Queries are new copies of random sources (a re-upload
    looking for its family). With ``family_size=1`` the bank is a plain isotropic Gaussian
    mixture and queries are fresh draws from it: the hardest case for graph indexes, with
    no structure below the topic.
    """

    def __init__(
        self, dim: int, topics: int, topic_noise: float, family_size: int, copy_noise: float, rng: np.random.Generator
    ) -> None:
        self.dim, self.topic_noise, self.family_size, self.copy_noise, self.rng = dim, topic_noise, family_size, copy_noise, rng
        self.centres = rng.standard_normal((topics, dim)).astype(np.float32)
        self.sources = np.zeros((0, dim), np.float32)

    def _new_sources(self, m: int) -> np.ndarray:
        picked = self.centres[self.rng.integers(0, len(self.centres), m)]
        return picked + self.topic_noise * self.rng.standard_normal((m, self.dim)).astype(np.float32)

    def _noise(self, m: int) -> np.ndarray:
        return self.copy_noise * self.rng.standard_normal((m, self.dim)).astype(np.float32)

    def bank(self, n: int, chunk: int = 200_000) -> np.ndarray:
        """The ``n`` bank vectors (generated in chunks)."""
        self.sources = self._new_sources(max(1, n // self.family_size))
        out = np.empty((n, self.dim), dtype=np.float32)
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            out[start : start + m] = self.sources[np.arange(start, start + m) % len(self.sources)] + self._noise(m)
        return normalize(out)

    def queries(self, m: int) -> np.ndarray:
        """``m`` queries: new copies of bank sources (fresh sources when ``family_size`` is 1)."""
        if self.family_size == 1:
            base = self._new_sources(m)
        else:
            base = self.sources[self.rng.integers(0, len(self.sources), m)]
        return normalize(base + self._noise(m))


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of the exact top-k found in the approximate top-k."""
    return float(np.mean([len(set(f[f >= 0].tolist()) & set(t.tolist())) / truth.shape[1] for f, t in zip(found, truth)]))


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """``fn()``, its wall-clock seconds and the calling thread's CPU seconds."""
    w0, c0 = time.perf_counter(), time.thread_time()
    out = fn()
    return out, time.perf_counter() - w0, time.thread_time() - c0


def one_at_a_time(search: Callable[[np.ndarray], np.ndarray], queries: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Search each query in its own call; returns ids and wall/CPU queries per second."""

    def run() -> np.ndarray:
        return np.concatenate([search(queries[i : i + 1]) for i in range(len(queries))])

    ids, wall, cpu = timed(run)
    return ids, len(queries) / wall, len(queries) / max(cpu, 1e-9)


def index_bytes(index: ClipIndex) -> tuple[int, float]:
    """Size of the saved index shards (``faiss.write_index`` files) and bytes per vector."""
    d = Path(tempfile.mkdtemp(prefix="bench-index-"))
    try:
        index.save(d)
        total = sum(p.stat().st_size for p in d.glob("shard-*.faiss"))
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return total, total / index.n_vectors


def bench_hnsw(x: np.ndarray, ids: list[str], q: np.ndarray, truth: np.ndarray, args: argparse.Namespace) -> dict[str, Any]:
    params = IndexParams(
        kind="hnsw", hnsw_m=args.hnsw_m, ef_construction=args.ef_construction, shard_size=max(len(x), args.shard_size)
    )
    t0 = time.perf_counter()
    index = build_index_from_vectors(x, ids, params, threads=args.build_threads, progress=True)
    build_s = time.perf_counter() - t0
    total, per_vector = index_bytes(index)
    shard = index.shards[0]
    sweep = []
    with faiss_threads(1):
        for ef in args.ef:

            def search(v: np.ndarray, ef: int = ef) -> np.ndarray:
                return index.search(v, K, ef_search=ef).rows

            found, qps_wall, qps_cpu = one_at_a_time(search, q)
            raw_params = search_parameters(index.params, ef_search=ef)

            def raw(v: np.ndarray, p: Any = raw_params) -> np.ndarray:
                return shard.search(v, K, params=p)[1]

            def batch(ef: int = ef) -> Any:
                return index.search(q, K, ef_search=ef)

            _, raw_wall, raw_cpu = one_at_a_time(raw, q)
            (_, batch_wall, batch_cpu) = timed(batch)
            sweep.append(
                {
                    "ef_search": ef,
                    "recall_at_10": recall_at_k(found, truth),
                    "queries_per_s_single": qps_wall,
                    "queries_per_s_single_cpu": qps_cpu,
                    "queries_per_s_single_faiss_only": raw_wall,
                    "queries_per_s_single_faiss_only_cpu": raw_cpu,
                    "queries_per_s_batch": len(q) / batch_wall,
                    "queries_per_s_batch_cpu": len(q) / max(batch_cpu, 1e-9),
                }
            )
            print(
                f"  hnsw efSearch={ef}: recall@10 {sweep[-1]['recall_at_10']:.4f}, {qps_wall:,.0f} q/s (cpu {qps_cpu:,.0f}; "
                f"faiss only {raw_wall:,.0f}, cpu {raw_cpu:,.0f})",
                flush=True,
            )
    return {
        "params": {"M": params.hnsw_m, "ef_construction": params.ef_construction, "shards": len(index.shards)},
        "build_seconds": build_s,
        "build_threads": args.build_threads,
        "index_bytes": total,
        "bytes_per_vector": per_vector,
        "sweep": sweep,
    }


def bench_exact(x: np.ndarray, q: np.ndarray, args: argparse.Namespace) -> tuple[dict[str, Any], np.ndarray]:
    import faiss

    flat = faiss.IndexFlatIP(x.shape[1])
    flat.add(x)
    with faiss_threads(args.build_threads):
        _, truth = flat.search(q, K)
    with faiss_threads(1):
        sub = q[: args.exact_queries]
        _, qps_wall, qps_cpu = one_at_a_time(lambda v: flat.search(v, K)[1], sub)
        (_, batch_wall, batch_cpu) = timed(lambda: flat.search(q, K))
    print(f"  exact: {qps_wall:,.1f} q/s one at a time (cpu {qps_cpu:,.1f}), {len(q) / batch_wall:,.0f} q/s batched", flush=True)
    return {
        "queries_timed_single": len(sub),
        "queries_per_s_single": qps_wall,
        "queries_per_s_single_cpu": qps_cpu,
        "queries_per_s_batch": len(q) / batch_wall,
        "queries_per_s_batch_cpu": len(q) / max(batch_cpu, 1e-9),
    }, truth


def bench_ivfpq(x: np.ndarray, ids: list[str], q: np.ndarray, truth: np.ndarray, args: argparse.Namespace) -> dict[str, Any]:
    """IVF-PQ, saved and loaded back as a service loads it (with ``refine`` the kept vectors are
    memory-mapped); for each nprobe and re-scoring factor: recall@10 and single-thread queries/s.
    ``refine_k_factor`` 1 re-orders PQ's own top-k, so its recall is PQ's alone."""
    params = IndexParams(
        kind="ivfpq",
        ivf_nlist=args.nlist,
        pq_m=args.pq_m,
        pq_nbits=8,
        opq=args.opq,
        train_size=args.train_size,
        shard_size=max(len(x), args.shard_size),
        refine=args.refine,
    )
    t0 = time.perf_counter()
    built = build_index_from_vectors(x, ids, params, threads=args.build_threads, progress=True)
    build_s = time.perf_counter() - t0
    saved = Path(tempfile.mkdtemp(prefix="bench-ivfpq-"))
    try:
        built.save(saved)
        del built
        total = sum(p.stat().st_size for p in saved.glob("shard-*.faiss"))
        index = load_index(saved)  # refine vectors memory-mapped, as a service holds them
        resident = index.resident_bytes_per_vector()
        factors = args.refine_k_factor if args.refine != "none" else [None]
        sweep = []
        with faiss_threads(1):
            for nprobe in args.nprobe:
                for factor in factors:

                    def search(v: np.ndarray, nprobe: int = nprobe, factor: float | None = factor) -> np.ndarray:
                        return index.search(v, K, nprobe=nprobe, refine_k_factor=factor).rows

                    found, qps_wall, qps_cpu = one_at_a_time(search, q)
                    sweep.append(
                        {
                            "nprobe": nprobe,
                            "refine_k_factor": factor,
                            "recall_at_10": recall_at_k(found, truth),
                            "queries_per_s_single": qps_wall,
                            "queries_per_s_single_cpu": qps_cpu,
                        }
                    )
                    print(
                        f"  ivfpq nprobe={nprobe} refine x{factor}: recall@10 {sweep[-1]['recall_at_10']:.4f}, "
                        f"{qps_wall:,.0f} q/s (cpu {qps_cpu:,.0f})",
                        flush=True,
                    )
    finally:
        shutil.rmtree(saved, ignore_errors=True)
    return {
        "factory": params.factory_string(x.shape[1], min(len(x), params.train_size)),
        "refine": args.refine,
        "train_size": min(len(x), params.train_size),
        "build_seconds": build_s,
        "index_bytes": total,
        "bytes_per_vector": total / len(x),
        "resident_bytes_per_vector": resident,
        "code_bytes_per_vector": params.pq_m * params.pq_nbits / 8 + 8 + (8 if args.refine != "none" else 0),
        "sweep": sweep,
    }


def bench_sharded(x: np.ndarray, ids: list[str], q: np.ndarray, truth: np.ndarray, args: argparse.Namespace) -> dict[str, Any]:
    """HNSW cut into ``--shards`` shards searched one after the other and merged (what a
    query fanned out to N shard servers costs, without the network): recall@10, single-thread
    queries/s, and the merge of the per-shard top-k (:func:`merge_topk`) timed alone."""
    shard_size = -(-len(x) // args.shards)
    params = IndexParams(kind="hnsw", hnsw_m=args.hnsw_m, ef_construction=args.ef_construction, shard_size=shard_size)
    t0 = time.perf_counter()
    index = build_index_from_vectors(x, ids, params, threads=args.build_threads, progress=True)
    build_s = time.perf_counter() - t0
    sweep = []
    with faiss_threads(1):
        for ef in args.shard_ef:
            sp = search_parameters(params, ef_search=ef)

            def search(v: np.ndarray, ef: int = ef) -> np.ndarray:
                return index.search(v, K, ef_search=ef).rows

            found, qps_wall, qps_cpu = one_at_a_time(search, q)
            per_shard = [[s.search(q[i : i + 1], K, params=sp) for s in index.shards] for i in range(len(q))]

            def merge_all(per_shard: list[list[Any]] = per_shard) -> None:
                for hits in per_shard:
                    merge_topk([h[0] for h in hits], [h[1] for h in hits], K)

            _, merge_wall, merge_cpu = timed(merge_all)
            sweep.append(
                {
                    "ef_search": ef,
                    "recall_at_10": recall_at_k(found, truth),
                    "queries_per_s_single": qps_wall,
                    "queries_per_s_single_cpu": qps_cpu,
                    "merge_us_per_query": 1e6 * merge_wall / len(q),
                    "merge_share_of_search": (merge_wall / len(q)) / (1 / qps_wall),
                }
            )
            print(
                f"  {len(index.shards)} shards efSearch={ef}: recall@10 {sweep[-1]['recall_at_10']:.4f}, "
                f"{qps_wall:,.0f} q/s (cpu {qps_cpu:,.0f}); merge {sweep[-1]['merge_us_per_query']:.1f} us/query",
                flush=True,
            )
    return {
        "shards": len(index.shards),
        "vectors_per_shard": shard_size,
        "params": {"M": params.hnsw_m, "ef_construction": params.ef_construction},
        "build_seconds": build_s,
        "build_threads": args.build_threads,
        "sweep": sweep,
    }


def verdict(result: dict[str, Any]) -> dict[str, Any]:
    """Targets and pass/fail: the default efSearch, and the fastest setting that reaches the recall target."""
    exact = result["exact"]
    out: dict[str, Any] = {"targets": TARGETS}
    hnsw = result.get("hnsw")
    if hnsw:
        default = next((s for s in hnsw["sweep"] if s["ef_search"] == 32), hnsw["sweep"][0])
        good = [s for s in hnsw["sweep"] if s["recall_at_10"] >= TARGETS["recall_at_10"]]
        best = max(good, key=lambda s: s["queries_per_s_single"]) if good else None
        for name, s in (("hnsw_default_ef", default), ("hnsw_fastest_at_target_recall", best)):
            if s is None:
                out[name] = {"pass": False, "reason": "no efSearch reached the recall target"}
                continue
            speedup = s["queries_per_s_single"] / exact["queries_per_s_single"]
            speedup_cpu = s["queries_per_s_single_cpu"] / exact["queries_per_s_single_cpu"]
            checks = {
                "recall_at_10": s["recall_at_10"] >= TARGETS["recall_at_10"],
                "queries_per_s": s["queries_per_s_single"] >= TARGETS["queries_per_s"],
                "queries_per_s_cpu": s["queries_per_s_single_cpu"] >= TARGETS["queries_per_s"],
                "speedup_vs_exact": speedup >= TARGETS["speedup_vs_exact"],
                "bytes_per_vector": hnsw["bytes_per_vector"] <= TARGETS["hnsw_bytes_per_vector"],
            }
            out[name] = {
                "ef_search": s["ef_search"],
                "recall_at_10": s["recall_at_10"],
                "queries_per_s": s["queries_per_s_single"],
                "queries_per_s_cpu": s["queries_per_s_single_cpu"],
                "speedup_vs_exact": speedup,
                "speedup_vs_exact_cpu": speedup_cpu,
                "bytes_per_vector": hnsw["bytes_per_vector"],
                "checks": checks,
                "pass": all(checks.values()),
            }
    ivf = result.get("ivfpq")
    if ivf:
        best = max(ivf["sweep"], key=lambda s: (s["recall_at_10"], s["queries_per_s_single"]))
        pq_alone = [s for s in ivf["sweep"] if s["refine_k_factor"] in (None, 1)]
        checks = {
            "resident_bytes_per_vector": ivf["resident_bytes_per_vector"] <= TARGETS["ivfpq_bytes_per_vector"],
            "recall_at_10_after_rerank": best["recall_at_10"] >= TARGETS["ivfpq_recall_at_10"],
        }
        out["ivfpq"] = {
            "resident_bytes_per_vector": ivf["resident_bytes_per_vector"],
            "bytes_per_vector_on_disk": ivf["bytes_per_vector"],
            "best": best,
            "best_recall_at_10_pq_alone": max((s["recall_at_10"] for s in pq_alone), default=None),
            "checks": checks,
            "pass": all(checks.values()),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000, help="database vectors")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--exact-queries", type=int, default=200, help="queries timed one at a time on exact search")
    ap.add_argument("--topics", type=int, default=1000, help="Gaussian topics the sources are drawn from")
    ap.add_argument("--topic-noise", type=float, default=0.5, help="spread of sources around their topic (centre scale 1)")
    ap.add_argument("--family-size", type=int, default=10, help="near-copies per source in the bank")
    ap.add_argument("--copy-noise", type=float, default=0.4, help="spread of copies around their source")
    ap.add_argument("--hnsw-m", type=int, default=DEFAULTS.hnsw_m, help="HNSW neighbours per node (M)")
    ap.add_argument("--ef-construction", type=int, default=DEFAULTS.ef_construction)
    ap.add_argument("--ef", type=int, nargs="+", default=[16, 32, 64, 128])
    ap.add_argument("--build-threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--shard-size", type=int, default=1_000_000, help="vectors per shard (>= n: one shard)")
    ap.add_argument("--ivfpq", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--nlist", type=int, default=DEFAULTS.ivf_nlist)
    ap.add_argument("--pq-m", type=int, default=DEFAULTS.pq_m)
    ap.add_argument("--opq", action=argparse.BooleanOptionalAction, default=DEFAULTS.opq)
    ap.add_argument("--train-size", type=int, default=DEFAULTS.train_size)
    ap.add_argument("--nprobe", type=int, nargs="+", default=[16, 64])
    ap.add_argument("--refine", choices=["none", "sqfp16", "flat"], default="sqfp16", help="IVF-PQ re-scoring vectors")
    ap.add_argument("--refine-k-factor", type=float, nargs="+", default=[1.0, 4.0, 16.0])
    ap.add_argument("--shards", type=int, default=4, help="HNSW shards for the sharded search (0: skip it)")
    ap.add_argument("--shard-ef", type=int, nargs="+", default=[32, 64], help="efSearch of the sharded search")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/index.json"))
    args = ap.parse_args(argv)

    import faiss

    load_start = os.getloadavg()
    t_start = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    print(
        f"data: {args.n:,} x {args.dim}, families of {args.family_size} copies over {args.topics} topics, {args.queries} queries",
        flush=True,
    )
    data = CopyFamilies(args.dim, args.topics, args.topic_noise, args.family_size, args.copy_noise, rng)
    x = data.bank(args.n)
    q = data.queries(args.queries)
    del data
    ids = [f"c{i}" for i in range(args.n)]

    result: dict[str, Any] = {
        "benchmark": "index",
        "n": args.n,
        "dim": args.dim,
        "queries": args.queries,
        "topics": args.topics,
        "topic_noise": args.topic_noise,
        "family_size": args.family_size,
        "copy_noise": args.copy_noise,
        "k": K,
        "seed": args.seed,
    }
    print("exact search (ground truth)", flush=True)
    result["exact"], truth = bench_exact(x, q, args)
    print("HNSW", flush=True)
    result["hnsw"] = bench_hnsw(x, ids, q, truth, args)
    if args.shards > 1:
        print(f"HNSW in {args.shards} shards", flush=True)
        result["hnsw_sharded"] = bench_sharded(x, ids, q, truth, args)
    if args.ivfpq:
        print("IVF-PQ", flush=True)
        result["ivfpq"] = bench_ivfpq(x, ids, q, truth, args)
    result["verdict"] = verdict(result)
    result["machine"] = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "faiss": faiss.__version__,
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
    }
    result["seconds"] = time.perf_counter() - t_start
    result["command"] = "python benchmarks/bench_index.py " + " ".join(sys.argv[1:] if argv is None else argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["verdict"], indent=2))
    print(f"wrote {args.out} in {result['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
