"""Bank scale benchmark: a bank of ``--n`` references, ``--add`` more, ``--disable`` of them off,
and how long until a running searcher's results reflect each change.

With the library (:mod:`clipguard.banks`) doing every step, on a fresh bank database
(``--url``; default a SQLite file in a temporary folder, as the ``local`` profile):

1. ``create``: the bank, then ``--n`` references (``r<i>`` -> clip ``c<i>``) in one
   ``add_references`` call (one transaction: rows + one audit row each, content_version 1);
2. ``build``: a :class:`~clipguard.banks.BankSearcher` over them (reads the rows, looks the
   clips up in ``--dim``-d random float32 embeddings, builds the FAISS index of ``--kind``
   with the library's default parameters);
3. ``add``: ``--add`` new references in one call; then the time from the call's return until a
   search returns them (the searcher checks the version on search: ``refresh_interval_s=0``);
4. ``disable``: ``--disable`` random references of the first ``n``; the same timing.

After each change it verifies, over every reference concerned: each added one is found for
its own embedding (top-1 and top-10 counts), no disabled one is ever returned (top-10 of its
own embedding), no result lists a reference twice, and :meth:`BankSearcher.check` (the index
against the store: every enabled reference held exactly once, nothing else, vector count
equal) holds. ``verified`` is true only if all of that held. Single-query search latency
(p50 / p99 over ``--queries`` queries, one per call) is measured after the changes. The
machine's load average is recorded at the start and the end.

``ivfpq`` (default) removes vectors in place; ``hnsw`` cannot, so its disable step is a full
rebuild (minutes at 1M: run it with a smaller ``--n``).

Usage::

    .venv/bin/python benchmarks/bench_banks.py [--n 1000000] [--kind ivfpq] [--out benchmarks/results/banks.json]
    .venv/bin/python benchmarks/bench_banks.py --kind hnsw --n 100000 --out benchmarks/results/banks_hnsw.json
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
from typing import Any, TypeVar

import numpy as np

from clipguard.banks import BankSearcher, BankStore, ClipEmbeddings, NewReference
from clipguard.config import IndexConfig
from clipguard.index import IndexParams

ACTOR = "cli:bench"
BANK = "bench"
K = 10
T = TypeVar("T")


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def until_visible(searcher: BankSearcher, vector: np.ndarray, version: int) -> float:
    """Seconds until a search answers from ``version`` (the first one after a change refreshes)."""
    t0 = time.perf_counter()
    while searcher.search(vector[None], ["probe"], K).content_version < version:
        if searcher.last_error:
            raise RuntimeError(f"refresh failed: {searcher.last_error}")
    return time.perf_counter() - t0


def own_hits(searcher: BankSearcher, emb: ClipEmbeddings, clips: np.ndarray, batch: int = 1_000) -> list[list[str]]:
    """Ref ids found (top-K) for the embedding of each clip ``c<i>`` in ``clips``."""
    hits: list[list[str]] = []
    for start in range(0, len(clips), batch):
        rows = clips[start : start + batch]
        result = searcher.search(emb.vectors[rows], [f"q{i}" for i in rows], K)
        hits += [[m.ref_id for m in found] for found in result.matches]
    return hits


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000, help="references the bank starts with")
    ap.add_argument("--add", type=int, default=10_000, help="references added in the second step")
    ap.add_argument("--disable", type=int, default=1_000, help="references disabled in the third step")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--kind", choices=["ivfpq", "hnsw"], default="ivfpq", help="index kind (library defaults otherwise)")
    ap.add_argument("--queries", type=int, default=200, help="single-query searches timed after the changes")
    ap.add_argument("--url", default=None, help="bank database URL (default: SQLite in a temporary folder)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/banks.json"))
    args = ap.parse_args(argv)

    import faiss
    import sqlalchemy

    load_start = os.getloadavg()
    t_start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="bench_banks_"))
    store = BankStore(args.url or f"sqlite:///{tmp / 'banks.db'}")
    try:
        rng = np.random.default_rng(args.seed)
        total = args.n + args.add
        emb = ClipEmbeddings([f"c{i}" for i in range(total)], rng.standard_normal((total, args.dim), dtype=np.float32))
        params = IndexParams.from_config(IndexConfig.model_validate({}), kind=args.kind)
        result: dict[str, Any] = {
            "benchmark": "banks",
            "n": args.n,
            "add": args.add,
            "disable": args.disable,
            "dim": args.dim,
            "k": K,
            "index": params.build_spec(),
            "database": store.engine.dialect.name,
            "seed": args.seed,
        }

        print(f"create: a bank of {args.n:,} references", flush=True)
        store.create_bank(BANK, "violation", ACTOR)
        report, seconds = timed(
            lambda: store.add_references(BANK, (NewReference(f"r{i}", f"c{i}") for i in range(args.n)), ACTOR)
        )
        result["create"] = {"seconds": seconds, "rows_per_s": args.n / seconds, "content_version": report.content_version}

        print(f"build: the {args.kind} index", flush=True)
        searcher, seconds = timed(lambda: BankSearcher(store, BANK, emb, params, refresh_interval_s=0))
        result["build"] = {"seconds": seconds, "references": searcher.size}

        print(f"add: {args.add:,} references", flush=True)
        new = np.arange(args.n, total)
        report, write_s = timed(lambda: store.add_references(BANK, (NewReference(f"r{i}", f"c{i}") for i in new), ACTOR))
        visible_s = until_visible(searcher, emb.vectors[new[0]], report.content_version)
        hits = own_hits(searcher, emb, new)
        result["add_step"] = {
            "write_seconds": write_s,
            "visible_seconds": visible_s,
            "total_seconds": write_s + visible_s,
            "content_version": report.content_version,
            "found_top1": sum(h[:1] == [f"r{i}"] for h, i in zip(hits, new)),
            "found_top10": sum(f"r{i}" in h for h, i in zip(hits, new)),
            "duplicated_in_a_result": sum(len(h) != len(set(h)) for h in hits),
        }

        print(f"disable: {args.disable:,} references", flush=True)
        off = np.sort(rng.choice(args.n, args.disable, replace=False))
        report, write_s = timed(lambda: store.disable_references(BANK, [f"r{i}" for i in off], ACTOR))
        visible_s = until_visible(searcher, emb.vectors[off[0]], report.content_version)
        hits = own_hits(searcher, emb, off)
        disabled = {f"r{i}" for i in off}
        result["disable_step"] = {
            "write_seconds": write_s,
            "visible_seconds": visible_s,
            "total_seconds": write_s + visible_s,
            "content_version": report.content_version,
            "disabled_returned": sum(r in disabled for h in hits for r in h),
            "duplicated_in_a_result": sum(len(h) != len(set(h)) for h in hits),
        }

        check, seconds = timed(searcher.check)
        result["check"] = {**check.to_dict(), "seconds": seconds}
        for key in ("missing", "extra", "stale"):  # the lists themselves only when something is wrong
            result["check"][key] = result["check"][key][:20]

        kept = rng.choice(np.setdiff1d(np.arange(total), off), args.queries, replace=False)
        latencies = []
        for i in kept:
            _, seconds = timed(lambda: searcher.search(emb.vectors[i][None], [f"q{i}"], K))
            latencies.append(seconds * 1e3)
        result["search_ms"] = {"p50": float(np.percentile(latencies, 50)), "p99": float(np.percentile(latencies, 99))}

        add, dis = result["add_step"], result["disable_step"]
        result["verified"] = bool(
            check.ok
            and add["found_top10"] == args.add
            and add["duplicated_in_a_result"] == 0
            and dis["disabled_returned"] == 0
            and dis["duplicated_in_a_result"] == 0
            and check.active == args.n + args.add - args.disable
        )
    finally:
        store.close()
        shutil.rmtree(tmp, ignore_errors=True)

    result["machine"] = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "faiss": faiss.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
    }
    result["seconds"] = time.perf_counter() - t_start
    result["command"] = "python benchmarks/bench_banks.py " + " ".join(sys.argv[1:] if argv is None else argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("create", "build", "add_step", "disable_step", "search_ms", "verified")}, indent=2))
    print(f"wrote {args.out} in {result['seconds']:.0f} s")
    return 0 if result["verified"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
