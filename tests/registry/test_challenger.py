"""The no-skill challenger (clipguard.registry.challenger); the whole loop, gate included, runs in
tests/registry/test_gate.py and in ``make demo``."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from clipguard.config import load_config
from clipguard.models.matchlite import MatchLiteConfig, MatchLiteForPairClassification
from clipguard.registry.challenger import degrade_model


def test_a_degraded_model_is_the_same_model_with_no_skill(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = MatchLiteForPairClassification(MatchLiteConfig.from_settings(load_config().models)).eval()
    model.save_pretrained(tmp_path / "student")
    out = degrade_model(tmp_path / "student", tmp_path / "degraded")
    before, after = load_file(str(tmp_path / "student" / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert before.keys() == after.keys()
    for key, value in before.items():
        assert after[key].shape == value.shape and after[key].dtype == value.dtype
        if value.is_floating_point():
            assert not after[key].any(), key
    degraded = MatchLiteForPairClassification.from_pretrained(out).eval()  # still a loadable student
    assert sum(p.abs().sum() for p in degraded.parameters()) == 0
