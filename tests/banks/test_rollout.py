"""Staged rollout: a bank at rollout r applies to a stable, hash-selected share r of query ids."""

from __future__ import annotations

from clipguard.banks import in_rollout, rollout_position

QUERIES = [f"clip-{i}" for i in range(20_000)]


def selected(bank: str, fraction: float) -> set[str]:
    return {q for q in QUERIES if in_rollout(bank, q, fraction)}


def test_the_choice_is_deterministic_per_query_id() -> None:
    positions = [rollout_position("violations", q) for q in QUERIES[:100]]
    assert positions == [rollout_position("violations", q) for q in QUERIES[:100]]
    assert all(0 <= p < 1 for p in positions)
    # SHA-256, not Python's salted hash(): the same in every process and on every machine
    assert rollout_position("violations", "clip-1") == 0.19152110907832723


def test_the_share_matches_the_rollout_and_grows_monotonically() -> None:
    assert selected("violations", 0.0) == set() and selected("violations", 1.0) == set(QUERIES)
    ten, half = selected("violations", 0.1), selected("violations", 0.5)
    assert abs(len(ten) / len(QUERIES) - 0.1) < 0.01 and abs(len(half) / len(QUERIES) - 0.5) < 0.015
    assert ten <= half  # raising the rollout keeps every query that was in


def test_banks_select_independent_queries() -> None:
    a, b = selected("bank-a", 0.5), selected("bank-b", 0.5)
    assert abs(len(a & b) / len(QUERIES) - 0.25) < 0.015
