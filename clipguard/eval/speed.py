"""How fast the MatchLite student scores pairs from cached features, and how close to the machine's peak.

TARGETS.md: student scoring from cached features at >= 500 pairs/s on 2 cores, and >= 30% of
the machine's fp32 matmul peak; the student gate (``clipguard/registry/policy.yaml``) requires
``pairs_per_s`` (floor) and ``p99_ms`` (ceiling). :func:`measure_student_speed` measures, in
one process (torch's thread count restored after):

``pairs_per_s``
    throughput, on ``speed.torch_threads`` intra-op threads, of
    :func:`clipguard.training.student.score_pairs` — the evaluation's scoring path: cached
    float16 tokens of an in-memory :class:`~clipguard.training.data.FeatureBank` collated to
    float32, the forward pass, the softmax — over ``speed.pairs`` pairs of the dataset
    (cycled) at ``speed.batch_size`` pairs per pass, after ``speed.warmup`` untimed passes
    (also at other batch sizes with ``batch_sizes``);
``p50_ms`` / ``p99_ms``
    latency of ``speed.requests`` single-pair calls of the same path, each timed alone, on the
    threads the service scores with (:func:`latency_threads`: one on a 2-core machine, the
    other core being the HTTP event loop's);
``flops_per_pair``
    ``torch.utils.flop_counter`` on one forward pass of a batch, divided by its size (2 FLOPs
    per multiply-add; matmuls, convolutions and attention — element-wise ops are not counted);
``gflops`` / ``fraction_of_matmul_peak``
    ``flops_per_pair x pairs_per_s`` and its ratio to the fp32 matmul rate measured in the
    same run on the same threads (:func:`matmul_peak`: the fastest of ``speed.matmul_repeats``
    n x n products) — a ratio of two same-run figures, so machine load moves both.

Timings are wall clock on whatever else the machine runs: the result records the load
average before and after (``os.getloadavg``). On a loaded machine small ops on two
intra-op threads can run 10-100x slower (each waits for both threads to be scheduled), so
each timed loop stops early past ``speed.max_seconds`` (``stopped_by_budget``; at least one
batch / :data:`MIN_REQUESTS` requests) and the step stays a few seconds. Nothing here
asserts a time.

:func:`count_flops` is also what ``benchmarks/bench_flops.py`` counts with.
"""

from __future__ import annotations

import contextlib
import copy
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from clipguard.config import Config, load_config
from clipguard.encoders.runtime import available_cpus, configure_threads
from clipguard.features.store_format import resolve_features_dir
from clipguard.training.data import FeatureBank, StudentPairs, student_modalities

if TYPE_CHECKING:
    from clipguard.models.matchlite import MatchLiteConfig, MatchLiteForPairClassification
    from clipguard.training.data import StudentPairs

OMP_ENV: tuple[str, ...] = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")
"""Recorded with each result: read by the OpenMP runtime when torch loads, they change the timings
(on a loaded machine, ``OMP_WAIT_POLICY=PASSIVE`` keeps waiting threads from spinning on the
cores the thread they wait for needs)."""

GATE_METRICS: tuple[str, ...] = ("pairs_per_s", "p50_ms", "p99_ms", "gflops", "fraction_of_matmul_peak")
"""The speed figures :func:`clipguard.eval.evaluate.evaluate_student` adds to its ``metrics``."""


def _sdpa_flops(query_shape: Any, key_shape: Any, value_shape: Any, *args: Any, **kwargs: Any) -> int:
    from torch.utils.flop_counter import sdpa_flop_count

    return int(sdpa_flop_count(query_shape, key_shape, value_shape))


def count_flops(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[int, Any]:
    """Total FLOPs (``FlopCounterMode``, 2 per multiply-add) of one call of ``fn``, and its result.

    ``scaled_dot_product_attention`` on CPU runs ``aten._scaled_dot_product_flash_attention_for_cpu``,
    which torch's counter does not know (it would count 0): it is counted here with torch's
    own SDPA formula (``QK^T`` and ``AV`` matmuls), like the CUDA attention kernels.
    """
    from torch.utils.flop_counter import FlopCounterMode

    cpu_attention = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_flops}
    with FlopCounterMode(display=False, custom_mapping=cpu_attention) as counter:
        out = fn(*args, **kwargs)
    return int(counter.get_total_flops()), out


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[int]:
    """Run a block with ``n`` torch intra-op threads, then restore the previous count."""
    previous = torch.get_num_threads()
    try:
        yield configure_threads(n)
    finally:
        torch.set_num_threads(previous)


def _gflops(flops: float, seconds: float) -> float:
    return flops / seconds / 1e9 if seconds > 0 else float("nan")


def matmul_peak(size: int = 1024, repeats: int = 10, warmup: int = 2) -> dict[str, Any]:
    """fp32 ``size x size`` matmul rate on the current torch threads: the fastest of ``repeats``
    (``gflops``, the peak) and their median (``gflops_median``), 2 size^3 FLOPs each."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=generator)
    b = torch.randn(size, size, generator=generator)
    out = torch.empty(size, size)
    with torch.inference_mode():
        for _ in range(warmup):
            torch.mm(a, b, out=out)
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            torch.mm(a, b, out=out)
            seconds.append(time.perf_counter() - start)
    flops = 2.0 * size**3
    return {
        "size": size,
        "repeats": repeats,
        "gflops": _gflops(flops, min(seconds)),
        "gflops_median": _gflops(flops, float(np.median(seconds))),
    }


def _subset(dataset: StudentPairs, positions: Sequence[int]) -> StudentPairs:
    """The pairs of ``dataset`` at ``positions`` (repeats allowed) over the same bank, without labels."""
    pairs = dataset.pairs.iloc[list(positions)].reset_index(drop=True)
    return StudentPairs(pairs, dataset.bank, {})


def _cycled(n_available: int, n: int, offset: int = 0) -> list[int]:
    return [(offset + i) % n_available for i in range(n)]


def pair_batches(dataset: StudentPairs, batch_size: int, n_batches: int) -> list[StudentPairs]:
    """``n_batches`` consecutive batches of ``batch_size`` pairs of ``dataset`` (cycled), each a
    dataset of its own (built before any timing)."""
    return [_subset(dataset, _cycled(len(dataset), batch_size, i * batch_size)) for i in range(n_batches)]


MIN_REQUESTS = 10
"""single-pair requests timed even past the time budget (p99 of fewer is meaningless)"""


def throughput(
    model: MatchLiteForPairClassification,
    dataset: StudentPairs,
    batch_size: int,
    n_pairs: int,
    warmup: int = 3,
    max_seconds: float = float("inf"),
) -> dict[str, Any]:
    """Pairs per second of ``score_pairs``, one batch of ``batch_size`` pairs per call, over
    ``n_pairs`` pairs (the dataset's, cycled) after ``warmup`` untimed batches; stops early
    (after at least one batch) once the timed calls exceed ``max_seconds``."""
    from clipguard.training.student import score_pairs

    n_batches = -(-max(n_pairs, batch_size) // batch_size)
    batches = pair_batches(dataset, batch_size, warmup + n_batches)
    seconds, done = 0.0, 0
    for i, batch in enumerate(batches):
        start = time.perf_counter()
        score_pairs(model, batch, batch_size)
        if i >= warmup:
            seconds += time.perf_counter() - start
            done += batch_size
            if seconds > max_seconds:
                break
    return {
        "batch_size": batch_size,
        "pairs": done,
        "seconds": seconds,
        "pairs_per_s": done / seconds,
        "stopped_by_budget": done < n_batches * batch_size,
    }


def latency(
    model: MatchLiteForPairClassification,
    dataset: StudentPairs,
    requests: int,
    warmup: int = 3,
    max_seconds: float = float("inf"),
) -> dict[str, Any]:
    """Milliseconds of ``score_pairs`` on one pair, over ``requests`` single-pair calls (the
    dataset's pairs in turn) after ``warmup`` untimed ones; stops early (after at least
    :data:`MIN_REQUESTS`) once the timed calls exceed ``max_seconds``."""
    from clipguard.training.student import score_pairs

    singles = [_subset(dataset, [i % len(dataset)]) for i in range(warmup + requests)]
    ms: list[float] = []
    for i, one in enumerate(singles):
        start = time.perf_counter()
        score_pairs(model, one, 1)
        if i >= warmup:
            ms.append((time.perf_counter() - start) * 1e3)
            if len(ms) >= MIN_REQUESTS and sum(ms) > max_seconds * 1e3:
                break
    a = np.asarray(ms)
    return {
        "requests": len(ms),
        "p50_ms": float(np.percentile(a, 50)),
        "p90_ms": float(np.percentile(a, 90)),
        "p99_ms": float(np.percentile(a, 99)),
        "mean_ms": float(a.mean()),
        "max_ms": float(a.max()),
        "stopped_by_budget": len(ms) < requests,
    }


def flops_per_pair(model: MatchLiteForPairClassification, dataset: StudentPairs, batch_size: int) -> float:
    """FLOPs of one forward pass on the first ``batch_size`` pairs (cycled), per pair."""
    batch = _subset(dataset, _cycled(len(dataset), batch_size)).collate(range(batch_size))
    with torch.inference_mode():
        total, _ = count_flops(model.eval(), batch.query, batch.candidate)
    return total / batch_size


def latency_threads(cfg: Config) -> int:
    """Threads for the single-request latency: ``models.speed.latency_threads``, else what the
    service runs with (:meth:`clipguard.serving.runtime` ``load``: ``serving.torch_threads``,
    else the CPUs minus one for the HTTP event loop)."""
    return cfg.models.speed.latency_threads or cfg.serving.torch_threads or max(1, available_cpus() - 1)


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # not available on this platform
        return None


def measure_student_speed(
    model: MatchLiteForPairClassification,
    dataset: StudentPairs,
    cfg: Config | None = None,
    batch_sizes: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Throughput, single-pair latency, FLOPs and fraction of the same-run matmul peak of
    ``model`` scoring ``dataset``'s cached features (see the module docstring).

    Args:
        model: the student (put in eval mode).
        dataset: pairs over an in-memory feature bank (e.g. the evaluated split).
        cfg: ``cfg.models.speed`` settings (default :func:`~clipguard.config.load_config`).
        batch_sizes: also measure ``pairs_per_s`` at these batch sizes (``by_batch_size``).
    Returns:
        a JSON-ready dict; the top-level ``pairs_per_s`` / ``p50_ms`` / ``p99_ms`` /
        ``gflops`` / ``fraction_of_matmul_peak`` are the ones the gate reads.
    Raises:
        ValueError: ``dataset`` has no pairs.
    """
    if len(dataset) == 0:
        raise ValueError("measure_student_speed: the dataset has no pairs to score")
    cfg = cfg or load_config()
    s = cfg.models.speed
    batch = s.batch_size or cfg.models.training.eval_batch_size
    sizes = list(dict.fromkeys([batch, *(batch_sizes or ())]))
    # timed in the served form (conv + BatchNorm folded), on a copy when the caller's model can still train
    model = model if model.inference_only else copy.deepcopy(model).for_inference()
    load_before = _loadavg()
    started = time.perf_counter()
    with torch_threads(s.torch_threads) as threads:
        peak = matmul_peak(s.matmul_size, s.matmul_repeats)
        flops = flops_per_pair(model, dataset, batch)
        by_batch = {}
        for size in sizes:
            t = throughput(model, dataset, size, s.pairs, s.warmup, s.max_seconds)
            t["gflops"] = flops * t["pairs_per_s"] / 1e9
            t["fraction_of_matmul_peak"] = t["gflops"] / peak["gflops"]
            by_batch[str(size)] = t
    with torch_threads(latency_threads(cfg)) as single_threads:
        single = latency(model, dataset, s.requests, s.warmup, s.max_seconds)
    single["torch_threads"] = single_threads
    headline = by_batch[str(batch)]
    return {
        "pairs_per_s": headline["pairs_per_s"],
        "p50_ms": single["p50_ms"],
        "p99_ms": single["p99_ms"],
        "gflops": headline["gflops"],
        "fraction_of_matmul_peak": headline["fraction_of_matmul_peak"],
        "batch_size": batch,
        "flops_per_pair": flops,
        "matmul_peak": peak,
        "latency": single,
        "by_batch_size": by_batch,
        "torch_threads": threads,
        "available_cpus": available_cpus(),
        "omp_env": {k: os.environ.get(k) for k in OMP_ENV},
        "loadavg_before": load_before,
        "loadavg_after": _loadavg(),
        "seconds": time.perf_counter() - started,
        "method": "score_pairs on cached features (in-memory FeatureBank); single pairs timed one call each; "
        "peak = fastest fp32 matmul of the same run on the same threads",
    }


def synthetic_pairs(
    config: MatchLiteConfig,
    n_pairs: int = 256,
    n_clips: int = 64,
    tokens: dict[str, int] | None = None,
    seed: int = 0,
) -> StudentPairs:
    """Random cached features (float16, like a :class:`~clipguard.training.data.FeatureBank`
    loaded from a feature store) and random pairs over them, for speed measurements without
    a corpus. ``tokens``: real tokens per clip and modality (default: each ``max_*_tokens``),
    zero-padded to ``max_*_tokens``."""
    import pandas as pd

    rng = torch.Generator().manual_seed(seed)
    dims = {"visual": config.visual_dim, "audio": config.audio_dim, "text": config.text_dim}
    feats, masks = {}, {}
    for m in student_modalities(config.modalities):
        limit = config.max_tokens(m)
        real = min(limit, (tokens or {}).get(m, limit))
        x = torch.zeros(n_clips, limit, dims[m], dtype=torch.float16)
        x[:, :real] = torch.randn(n_clips, real, dims[m], generator=rng).half()
        mask = torch.zeros(n_clips, limit, dtype=torch.bool)
        mask[:, :real] = True
        feats[m], masks[m] = x, mask
    ids = [f"c{i:05d}" for i in range(n_clips)]
    picks = torch.randint(0, n_clips, (n_pairs, 2), generator=rng).tolist()
    pairs = pd.DataFrame(
        {
            "pair_id": [f"p{i:06d}" for i in range(n_pairs)],
            "query_clip_id": [ids[q] for q, _ in picks],
            "candidate_clip_id": [ids[c] for _, c in picks],
            "label": [0] * n_pairs,
        }
    )
    return StudentPairs(pairs, FeatureBank(ids, feats, masks), {})


def student_speed(
    model_dir: str | Path,
    features_dir: str | Path,
    root: str | Path,
    split: str = "test",
    cfg: Config | None = None,
    batch_sizes: Sequence[int] | None = None,
) -> dict[str, Any]:
    """:func:`measure_student_speed` of a trained student directory on ``split``'s cached features."""
    from clipguard.training.student import load_student, student_dataset

    cfg = cfg or load_config()
    model = load_student(model_dir)
    dataset = student_dataset(root, resolve_features_dir(features_dir), (split,), model.config, {"rci": 2})
    return {
        "model_dir": str(Path(model_dir).resolve()),
        "split": split,
        **measure_student_speed(model, dataset, cfg, batch_sizes),
    }
