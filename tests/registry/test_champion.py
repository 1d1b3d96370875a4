"""The gate re-evaluates a champion of another data version on the candidate's test set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clipguard.config import Config, load_config
from clipguard.data.schema import data_version
from clipguard.registry import current, gate_version, promote, registered_model_name
from clipguard.registry.champion import champion_reevaluator
from clipguard.registry.gate import GatePolicy
from tests.pipelines.test_package_bento import register_tiny_student
from tests.rci_fixtures import TINY_RCI_OVERRIDES, RCIWorld, build_rci_root

# every comparison against the champion is made (ap within 1.0 of it), none can fail
POLICY = GatePolicy.model_validate({"families": {"student": {"metrics": {"ap": {"threshold": 0.0, "max_regression": 1.0}}}}})


@pytest.fixture
def world(tmp_path: Path) -> RCIWorld:
    return build_rci_root(tmp_path / "rci", with_media=False)


@pytest.fixture
def cfg(registry_cfg: Config) -> Config:
    return load_config(overrides={**TINY_RCI_OVERRIDES, "work_dir": registry_cfg.work_dir})


def _champion(tmp_path: Path, cfg: Config, encoder_version: str) -> str:
    """A student registered on an older data version, gated and promoted."""
    version = register_tiny_student(tmp_path / "champion", cfg, data_version="d-older", encoder_version=encoder_version)
    assert gate_version("student", version, cfg=cfg, policy=POLICY).passed
    promote("student", version, cfg=cfg)
    return version


def test_champion_of_another_data_version_is_reevaluated_on_the_candidates_test_set(
    tmp_path: Path, cfg: Config, world: RCIWorld
) -> None:
    champion = _champion(tmp_path, cfg, "e000test")
    candidate = register_tiny_student(
        tmp_path / "candidate", cfg, seed=1, data_version=data_version(world.root), encoder_version="e000test"
    )
    out = tmp_path / "champion-eval"
    reevaluate = champion_reevaluator("student", world.root, world.features_dir, cfg=cfg, out_dir=out)
    decision = gate_version("student", candidate, cfg=cfg, policy=POLICY, reevaluate_champion=reevaluate)

    (check,) = [c for c in decision.checks if c.kind == "same_test_set"]
    assert check.passed and f"champion v{champion}" in check.message and "re-evaluated" in check.message
    # the champion's metrics are its evaluation on the candidate's data, not the registered ones
    report = json.loads((out / f"champion-v{champion}" / "metrics_test.json").read_text())
    assert report["data_version"] == data_version(world.root)
    assert decision.champion_metrics["ap"] == pytest.approx(report["metrics"]["ap"])
    assert report["metrics"]["ap"] != pytest.approx(0.9)  # 0.9: the AP it was registered with
    assert decision.passed and current("student", cfg=cfg).versions[candidate]["gate"] == "passed"


def test_champion_of_another_encoder_fails_the_gate_with_the_reason(tmp_path: Path, cfg: Config, world: RCIWorld) -> None:
    champion = _champion(tmp_path, cfg, "e-other")
    candidate = register_tiny_student(
        tmp_path / "candidate", cfg, seed=1, data_version=data_version(world.root), encoder_version="e000test"
    )
    reevaluate = champion_reevaluator("student", world.root, world.features_dir, cfg=cfg)
    decision = gate_version("student", candidate, cfg=cfg, policy=POLICY, reevaluate_champion=reevaluate)
    assert not decision.passed
    assert decision.reasons[0].startswith(
        f"champion v{champion}: {registered_model_name('student', cfg)} v{champion} was trained on encoder e-other"
    )
    assert current("student", cfg=cfg).champion == champion
