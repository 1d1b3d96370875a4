"""Gate logic on metric dicts (no registry): floors, tolerance vs champion, budgets, missing metrics."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from clipguard.config import load_config
from clipguard.registry.gate import (
    FamilyPolicy,
    PolicyError,
    evaluate_gate,
    load_policy,
    read_metrics_json,
)

POLICY = FamilyPolicy.model_validate(
    {
        "metrics": {
            "ap": {"threshold": 0.5, "max_regression": 0.01},
            "r_at_p80": {"threshold": 0.2, "max_relative_regression": 0.1},
            "pairs_per_s": {"threshold": 500},
            "p99_ms": {"threshold": 50, "greater_is_better": False},
        }
    }
)
GOOD = {"ap": 0.80, "r_at_p80": 0.50, "pairs_per_s": 900.0, "p99_ms": 12.0}


def _gate(candidate, champion=None, policy=POLICY):
    return evaluate_gate(
        "student",
        policy,
        candidate,
        champion,
        candidate_version="2",
        champion_version="1" if champion is not None else None,
        model_name="clipguard-student",
    )


def test_floors_pass_without_champion_and_say_only_floors_apply():
    d = _gate(GOOD)
    assert d.passed
    assert d.champion_version is None
    assert any(
        r.startswith("no champion for clipguard-student: champion comparisons skipped for ap, r_at_p80")
        and r.endswith("only the floors and baseline rules apply")
        for r in d.reasons
    )
    assert {c.kind for c in d.checks} == {"floor"}
    assert all(c.passed for c in d.checks)


def test_floor_failure_names_metric_value_and_floor():
    d = _gate({**GOOD, "ap": 0.42})
    assert not d.passed
    assert d.reasons[0] == "ap = 0.42 < floor 0.5"
    (failed,) = [c for c in d.checks if not c.passed]
    assert (failed.metric, failed.kind, failed.value, failed.bound) == ("ap", "floor", 0.42, 0.5)


def test_latency_budget_is_lower_is_better():
    assert _gate({**GOOD, "p99_ms": 49.9}).passed
    d = _gate({**GOOD, "p99_ms": 61.0})
    assert not d.passed
    assert d.reasons[0] == "p99_ms = 61 > ceiling 50"
    d = _gate({**GOOD, "pairs_per_s": 350.0})
    assert not d.passed and d.reasons[0] == "pairs_per_s = 350 < floor 500"


def test_regression_within_tolerance_passes_beyond_fails():
    champion = {"ap": 0.80, "r_at_p80": 0.50}
    assert _gate({**GOOD, "ap": 0.795}, champion).passed  # 0.005 worse, tolerance 0.01
    d = _gate({**GOOD, "ap": 0.70}, champion)  # above the floor, but 0.1 worse than the champion
    assert not d.passed
    assert d.reasons[0] == ("ap = 0.7 vs champion v1 0.8: regressed beyond the tolerance (must be >= 0.79; max_regression 0.01)")
    (failed,) = [c for c in d.checks if not c.passed]
    assert failed.kind == "no_regression" and failed.baseline == 0.8 and failed.bound == pytest.approx(0.79)


def test_relative_tolerance_scales_with_champion():
    champion = {"ap": 0.80, "r_at_p80": 0.50}
    assert _gate({**GOOD, "r_at_p80": 0.46}, champion).passed  # -8 %, tolerance 10 %
    d = _gate({**GOOD, "r_at_p80": 0.44}, champion)  # -12 %
    assert not d.passed and "r_at_p80 = 0.44 vs champion v1 0.5" in d.reasons[0]
    assert "must be >= 0.45" in d.reasons[0]


def test_both_tolerances_must_hold():
    policy = FamilyPolicy.model_validate({"metrics": {"ap": {"max_regression": 0.05, "max_relative_regression": 0.01}}})
    assert not _gate({"ap": 0.78}, {"ap": 0.80}, policy).passed  # within 0.05 but not within 1 %
    assert _gate({"ap": 0.795}, {"ap": 0.80}, policy).passed


def test_improvement_rules_use_mlflow_semantics_against_the_champion():
    policy = FamilyPolicy.model_validate({"metrics": {"ap": {"min_absolute_change": 0.01}}})
    assert _gate({"ap": 0.82}, {"ap": 0.80}, policy).passed
    d = _gate({"ap": 0.805}, {"ap": 0.80}, policy)
    assert not d.passed
    assert d.reasons[0] == ("ap = 0.805 vs champion v1 0.8: does not improve by the required margin (min_absolute_change 0.01)")
    # without a champion the improvement rule cannot apply: floors only (none here)
    assert _gate({"ap": 0.1}, None, policy).passed


def test_missing_or_nan_metric_fails_with_a_clear_reason():
    candidate = {k: v for k, v in GOOD.items() if k != "r_at_p80"}
    d = _gate(candidate)
    assert not d.passed
    assert d.reasons[0] == "r_at_p80: missing from the candidate's metrics (required by the student policy)"
    d = _gate({**GOOD, "ap": math.nan})
    assert not d.passed and d.reasons[0] == "ap = nan: not a finite number"


def test_champion_without_the_metric_is_skipped_with_a_note():
    d = _gate(GOOD, {"ap": 0.8})
    assert d.passed
    assert "champion v1 has no finite r_at_p80: champion comparison skipped for it" in d.reasons


BASELINE_POLICY = FamilyPolicy.model_validate(
    {"metrics": {"ap": {"threshold": 0.3, "min_over_baseline": 0.05, "max_regression": 0.01}}}
)


def test_min_over_baseline_compares_with_the_reference_on_the_same_pairs():
    ok = _gate({"ap": 0.40, "baseline_ap": 0.30}, policy=BASELINE_POLICY)
    assert ok.passed
    (check,) = [c for c in ok.checks if c.kind == "over_baseline"]
    assert (check.value, check.baseline) == (0.40, 0.30)
    assert check.bound == pytest.approx(0.35)

    # above the absolute floor, but not 0.05 better than the baseline scored on the same pairs
    low = _gate({"ap": 0.34, "baseline_ap": 0.30}, policy=BASELINE_POLICY)
    assert not low.passed
    assert low.reasons[0] == "ap = 0.34 vs baseline 0.3: does not beat it by the required 0.05 (must be >= 0.35)"

    # the baseline rule holds with a champion too, beside the regression check
    with_champion = _gate({"ap": 0.34, "baseline_ap": 0.30}, {"ap": 0.34}, policy=BASELINE_POLICY)
    assert {c.kind: c.passed for c in with_champion.checks} == {"floor": True, "over_baseline": False, "no_regression": True}


def test_min_over_baseline_fails_closed_without_the_baseline_metric():
    for metrics in ({"ap": 0.9}, {"ap": 0.9, "baseline_ap": math.nan}):
        d = _gate(metrics, policy=BASELINE_POLICY)
        assert not d.passed
        assert "no finite baseline_ap in the candidate's metrics" in d.reasons[0]


def test_min_over_baseline_lower_is_better():
    policy = FamilyPolicy.model_validate({"metrics": {"p99_ms": {"greater_is_better": False, "min_over_baseline": 5}}})
    assert _gate({"p99_ms": 10.0, "baseline_p99_ms": 20.0}, policy=policy).passed
    assert not _gate({"p99_ms": 18.0, "baseline_p99_ms": 20.0}, policy=policy).passed


def test_decision_is_json_ready():
    d = _gate({**GOOD, "ap": 0.3}, {"ap": 0.8, "r_at_p80": 0.5})
    payload = json.loads(json.dumps(d.to_dict()))
    assert payload["passed"] is False and payload["candidate_version"] == "2"
    assert payload["champion_metrics"] == {"ap": 0.8, "r_at_p80": 0.5}
    assert len(payload["policy_digest"]) == 16


def test_repo_policy_covers_every_configured_family():
    policy = load_policy(cfg=load_config())
    assert set(policy.families) == set(load_config().registry.models)
    assert policy.family("student").metrics["p99_ms"].greater_is_better is False
    assert policy.family("student").metrics["ap"].min_over_baseline is not None


def test_policy_errors_are_clear(tmp_path: Path):
    def policy(family: str, rule: dict) -> Path:
        return _write(tmp_path, {"families": {family: {"metrics": {"ap": rule}}}})

    with pytest.raises(PolicyError, match="no rules for family 'student'"):
        load_policy(policy("teacher", {"threshold": 0.5})).family("student")
    with pytest.raises(PolicyError, match="invalid gate policy"):
        load_policy(policy("student", {"treshold": 0.5}))
    with pytest.raises(PolicyError, match="invalid gate policy"):
        load_policy(policy("student", {"max_relative_regression": 2}))
    with pytest.raises(PolicyError, match="not found"):
        load_policy(tmp_path / "nope.yaml")


def test_read_metrics_json_flattens_numeric_leaves(tmp_path: Path):
    path = tmp_path / "bench.json"
    bench = {"pairs_per_s": 812.5, "latency": {"p99_ms": 9.1}, "machine": "2 cores", "ok": True}
    path.write_text(json.dumps(bench))
    assert read_metrics_json(path) == {"pairs_per_s": 812.5, "latency.p99_ms": 9.1, "ok": 1.0}
    assert read_metrics_json(path, "latency") == {"p99_ms": 9.1}
    with pytest.raises(ValueError, match="no 'metrics' object"):
        read_metrics_json(path, "metrics")


def _write(tmp_path: Path, policy: dict) -> Path:
    import yaml

    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    return path
