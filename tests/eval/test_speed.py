"""Student speed measurement (clipguard.eval.speed): what it reports, not how fast anything is."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from clipguard.config import Config, load_config
from clipguard.eval.speed import (
    GATE_METRICS,
    count_flops,
    flops_per_pair,
    latency,
    latency_threads,
    measure_student_speed,
    student_speed,
    synthetic_pairs,
    throughput,
    torch_threads,
)
from clipguard.models.matchlite import MatchLiteConfig, MatchLiteForPairClassification
from tests.rci_fixtures import TINY_RCI_OVERRIDES, RCIWorld

QUICK_SPEED = {
    "models.speed.torch_threads": 1,
    "models.speed.latency_threads": 1,
    "models.speed.pairs": 32,
    "models.speed.requests": 12,
    "models.speed.warmup": 1,
    "models.speed.matmul_size": 64,
    "models.speed.matmul_repeats": 3,
}
"""A few milliseconds of measuring on the tiny student (what the evaluation tests use too)."""


@pytest.fixture
def tiny() -> tuple[Config, MatchLiteForPairClassification]:
    cfg = load_config("local", {**TINY_RCI_OVERRIDES, **QUICK_SPEED})
    torch.manual_seed(0)
    return cfg, MatchLiteForPairClassification(MatchLiteConfig.from_settings(cfg.models)).eval()


def test_report_has_finite_positive_gate_metrics_and_consistent_ratios(tiny) -> None:
    cfg, model = tiny
    pairs = synthetic_pairs(model.config, n_pairs=10, n_clips=6, tokens={"visual": 3, "audio": 2, "text": 4})
    r = measure_student_speed(model, pairs, cfg, batch_sizes=[1, 4])
    for key in GATE_METRICS:
        assert math.isfinite(r[key]) and r[key] > 0, key
    assert r["p50_ms"] <= r["p99_ms"] == r["latency"]["p99_ms"]
    assert r["batch_size"] == cfg.models.training.eval_batch_size and list(r["by_batch_size"]) == [str(r["batch_size"]), "1", "4"]
    headline = r["by_batch_size"][str(r["batch_size"])]
    assert r["pairs_per_s"] == headline["pairs_per_s"] == pytest.approx(headline["pairs"] / headline["seconds"])
    assert r["gflops"] == pytest.approx(r["flops_per_pair"] * r["pairs_per_s"] / 1e9)
    assert r["fraction_of_matmul_peak"] == pytest.approx(r["gflops"] / r["matmul_peak"]["gflops"])
    assert r["matmul_peak"]["gflops"] >= r["matmul_peak"]["gflops_median"]
    assert r["latency"]["requests"] == 12 and r["torch_threads"] == r["latency"]["torch_threads"] == 1
    assert len(r["loadavg_before"]) == 3 and set(r["omp_env"]) == {"OMP_NUM_THREADS", "OMP_WAIT_POLICY"}


def test_student_dir_on_a_split_of_cached_features(tiny, rci_world: RCIWorld, tmp_path) -> None:
    cfg, model = tiny
    model_dir = model.save_pretrained(tmp_path / "student")
    r = student_speed(model_dir, rci_world.features_dir, rci_world.root, "test", cfg)
    assert r["split"] == "test" and r["model_dir"] == str(model_dir.resolve())
    assert r["pairs_per_s"] > 0 and r["p99_ms"] > 0


def test_flops_per_pair_is_the_flop_count_of_one_pair(tiny) -> None:
    _, model = tiny
    pairs = synthetic_pairs(model.config, n_pairs=4, n_clips=4)
    one = pairs.collate([0])
    with torch.inference_mode():
        expected, _ = count_flops(model, one.query, one.candidate)
    assert expected > 0 and flops_per_pair(model, pairs, 3) == pytest.approx(expected)


def test_count_flops_counts_cpu_attention() -> None:
    q, k, v = torch.randn(2, 4, 5, 8), torch.randn(2, 4, 7, 8), torch.randn(2, 4, 7, 8)
    flops, out = count_flops(F.scaled_dot_product_attention, q, k, v)
    assert out.shape == (2, 4, 5, 8)
    assert flops == 2 * (2 * 2 * 4 * 5 * 7 * 8)  # Q K^T and A V, 2 FLOPs per multiply-add


def test_time_budget_stops_early_but_keeps_a_minimum(tiny) -> None:
    _, model = tiny
    pairs = synthetic_pairs(model.config, n_pairs=5, n_clips=3)
    t = throughput(model, pairs, batch_size=2, n_pairs=40, warmup=0, max_seconds=1e-9)
    assert t["pairs"] == 2 and t["stopped_by_budget"]
    single = latency(model, pairs, requests=50, warmup=0, max_seconds=1e-9)
    assert single["requests"] == 10 and single["stopped_by_budget"]
    full = latency(model, pairs, requests=3, warmup=0)
    assert full["requests"] == 3 and not full["stopped_by_budget"]


def test_latency_is_measured_on_the_services_threads_unless_configured() -> None:
    from clipguard.encoders.runtime import available_cpus

    assert latency_threads(load_config("local")) == max(1, available_cpus() - 1)
    assert latency_threads(load_config("local", {"serving.torch_threads": 3})) == 3
    assert latency_threads(load_config("local", {"serving.torch_threads": 3, "models.speed.latency_threads": 2})) == 2


def test_threads_are_restored_and_empty_input_is_refused(tiny) -> None:
    cfg, model = tiny
    before = torch.get_num_threads()
    with torch_threads(before + 1) as n:
        assert n == torch.get_num_threads() == before + 1
    assert torch.get_num_threads() == before
    empty = synthetic_pairs(model.config, n_pairs=0, n_clips=2)
    with pytest.raises(ValueError, match="no pairs"):
        measure_student_speed(model, empty, cfg)
