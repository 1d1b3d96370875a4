"""Student scoring throughput from cached features (TARGETS.md: >= 500 pairs/s on 2 cores and
>= 30% of the machine's fp32 matmul peak).

Measures, with :func:`clipguard.eval.speed.measure_student_speed` (the same function the
evaluation step runs for the promotion gate), the ``local`` profile MatchLite at random init
(speed does not depend on the weights) scoring synthetic cached features shaped like a 20-s
clip at 1 fps (20 visual, 20 audio, 64 text tokens per clip, float16 in an in-memory
feature bank, zero-padded to the student's ``max_*_tokens``):

- pairs/s at each ``--batch-sizes`` (the first is the gate's ``pairs_per_s`` batch size),
  on each ``--threads`` torch thread count (the first, 2, is the target's; the JSON's
  ``result`` and ``met`` are for it);
- p50/p99 ms of single-pair requests, on the service's threads (``models.speed.latency_threads``);
- FLOPs per pair (``torch.utils.flop_counter``), achieved GFLOP/s and its ratio to the fp32
  matmul peak measured in the same run on the same threads;
- with ``--baseline-ref REF``: pairs/s of ``clipguard/models/matchlite.py`` as it is at git
  revision ``REF`` (loaded read-only with ``git show``, same weights) against the working
  tree's, the two scoring the same batches in alternation (``comparison``: the speed-up at
  each thread count and batch size).

The machine's load average is recorded (``os.getloadavg``) before and after: on a shared
machine other processes' load moves every figure (two intra-op threads suffer most, as
each small op waits for both threads to be scheduled).

Usage::

    .venv/bin/python benchmarks/bench_student.py [--batch-sizes 64 1 16 256] [--threads 2 1]
        [--baseline-ref HEAD] [--set models.speed.max_seconds=10] [--out benchmarks/results/student.json]
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from clipguard.config import load_config, parse_overrides
from clipguard.eval.speed import measure_student_speed, synthetic_pairs
from clipguard.models.matchlite import MatchLiteConfig, MatchLiteForPairClassification

REPO_ROOT = Path(__file__).resolve().parents[1]

TOKENS_PER_CLIP = {"visual": 20, "audio": 20, "text": 64}  # a 20-s clip at 1 fps; 64 text tokens (A.1)
TARGETS = {"pairs_per_s": 500.0, "fraction_of_matmul_peak": 0.30}


def module_at(ref: str, path: str = "clipguard/models/matchlite.py") -> ModuleType:
    """``path`` as it is at git revision ``ref``, imported as a standalone module."""
    source = subprocess.run(["git", "show", f"{ref}:{path}"], cwd=REPO_ROOT, check=True, capture_output=True, text=True).stdout
    tmp = Path(tempfile.mkdtemp(prefix="bench-student-")) / "matchlite_baseline.py"
    tmp.write_text(source)
    spec = importlib.util.spec_from_file_location("matchlite_baseline", tmp)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def interleaved(
    models: dict[str, Any], dataset: Any, batch_size: int, n_pairs: int, warmup: int, max_seconds: float
) -> dict[str, Any]:
    """Pairs/s of each model scoring the same batches in alternation (A B, B A, A B, ...), so
    that load drifting during the run hits all of them alike; stops past ``max_seconds`` per
    model (after at least one batch each)."""
    from clipguard.eval.speed import pair_batches
    from clipguard.training.student import score_pairs

    names = list(models)
    batches = pair_batches(dataset, batch_size, warmup + -(-n_pairs // batch_size))
    seconds = dict.fromkeys(names, 0.0)
    done = 0
    for i, batch in enumerate(batches):
        for name in names if i % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            score_pairs(models[name], batch, batch_size)
            if i >= warmup:
                seconds[name] += time.perf_counter() - start
        if i >= warmup:
            done += batch_size
            if max(seconds.values()) > max_seconds:
                break
    return {"batch_size": batch_size, "pairs": done} | {name: {"pairs_per_s": done / seconds[name]} for name in names}


def summary(r: dict[str, Any]) -> str:
    by = "  ".join(f"B={b}: {v['pairs_per_s']:.0f}/s" for b, v in r["by_batch_size"].items())
    return (
        f"{by}  | single pair p50 {r['p50_ms']:.2f} ms p99 {r['p99_ms']:.2f} ms | "
        f"{r['gflops']:.2f} GFLOP/s = {100 * r['fraction_of_matmul_peak']:.1f}% of the {r['matmul_peak']['gflops']:.1f} "
        f"GFLOP/s matmul peak (B={r['batch_size']}) | load {r['loadavg_before']} -> {r['loadavg_after']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 1, 16, 256])
    parser.add_argument("--threads", type=int, nargs="+", default=[2, 1], help="torch threads for pairs/s (first: the target's)")
    parser.add_argument("--baseline-ref", default=None, help="git revision of matchlite.py to compare with (first --threads)")
    parser.add_argument("--profile", default="local")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "student.json")
    args = parser.parse_args()
    batch, *others = args.batch_sizes
    base = {"models.speed.batch_size": batch, **parse_overrides(args.overrides)}
    cfgs = {t: load_config(args.profile, {**base, "models.speed.torch_threads": t}) for t in args.threads}
    cfg = cfgs[args.threads[0]]
    config = MatchLiteConfig.from_settings(cfg.models)
    torch.manual_seed(0)
    model = MatchLiteForPairClassification(config).eval()
    dataset = synthetic_pairs(config, n_pairs=1024, n_clips=256, tokens=TOKENS_PER_CLIP)

    started = time.perf_counter()
    by_threads = {}
    for t, cfg_t in cfgs.items():
        by_threads[str(t)] = measure_student_speed(model, dataset, cfg_t, others)
        print(f"{t} thread(s):", summary(by_threads[str(t)]))
    result = by_threads[str(args.threads[0])]
    comparison = None
    if args.baseline_ref:
        from clipguard.eval.speed import torch_threads

        old = module_at(args.baseline_ref)
        old_model = old.MatchLiteForPairClassification(old.MatchLiteConfig.from_dict(config.to_dict())).eval()
        old_model.load_state_dict(model.state_dict())
        # the working tree as it is served and measured (conv + BatchNorm folded, when that exists)
        served = copy.deepcopy(model)
        served = served.for_inference() if hasattr(served, "for_inference") else served
        models = {"working_tree": served, "baseline": old_model}
        s = cfg.models.speed
        comparison = {
            "matchlite_at": args.baseline_ref,
            "method": "the same batches scored by both models in alternation (A B, B A, ...)",
            "by_threads": {},
        }
        for t in args.threads:
            rows = {}
            with torch_threads(t):
                for b in args.batch_sizes:
                    r = interleaved(models, dataset, b, s.pairs, s.warmup, s.max_seconds)
                    r["speedup"] = r["working_tree"]["pairs_per_s"] / r["baseline"]["pairs_per_s"]
                    rows[str(b)] = r
                    print(
                        f"{t} thread(s) B={b}: working tree {r['working_tree']['pairs_per_s']:.0f}/s, "
                        f"{args.baseline_ref} {r['baseline']['pairs_per_s']:.0f}/s: x{r['speedup']:.2f}"
                    )
            comparison["by_threads"][str(t)] = rows

    out: dict[str, Any] = {
        "benchmark": "MatchLite student scoring from cached features (clipguard.eval.speed.measure_student_speed)",
        "model": f"{args.profile} profile MatchLite, random init (seed 0; speed does not depend on the weights)",
        "features": f"synthetic cached tokens per clip {TOKENS_PER_CLIP} (float16 feature bank, zero-padded to "
        f"max_*_tokens {config.max_visual_tokens}/{config.max_audio_tokens}/{config.max_text_tokens}), "
        f"{len(dataset)} random pairs over {len(dataset.bank.clip_ids)} clips",
        "settings": cfg.models.speed.model_dump(mode="json") | {"batch_size": result["batch_size"]},
        "result": result,
        "by_threads": by_threads,
        "targets": TARGETS,
        "met": {
            "pairs_per_s": result["pairs_per_s"] >= TARGETS["pairs_per_s"],
            "fraction_of_matmul_peak": result["fraction_of_matmul_peak"] >= TARGETS["fraction_of_matmul_peak"],
        },
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "processor": platform.processor()},
    }
    if comparison is not None:
        comparison["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
        out["comparison"] = comparison
    out["seconds"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(f"met: {out['met']}  wrote {args.out}")


if __name__ == "__main__":
    main()
