"""A no-skill challenger: the gate's live self-test.

:func:`gate_degraded_challenger` takes a registered model version, zeroes its weights (the
same architecture with no skill: every pair gets the same score, so its AP is the share of
positives and its R@P80 is 0), really evaluates it on a test split, registers it and gates
it. A gate that lets it through, or a champion that moves, is a broken gate. The demo runs
it after the first promotion; an operator can run it against any registry.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from clipguard.config import Config
from clipguard.core.tracking import Lineage
from clipguard.eval.evaluate import evaluate_student
from clipguard.models.matchlite import CONFIG_FILE, WEIGHTS_FILE
from clipguard.registry.champion import champion_reevaluator, download_model_dir
from clipguard.registry.gate import gate_version
from clipguard.registry.promote import current
from clipguard.registry.register import STUDENT_LOADER
from clipguard.registry.versions import log_model


def degrade_model(model_dir: str | Path, out_dir: str | Path) -> Path:
    """A copy of the safetensors model at ``model_dir`` with every floating-point tensor
    zeroed (integer buffers kept), loadable like the original."""
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = load_file(str(model_dir / WEIGHTS_FILE))
    zeroed = {k: torch.zeros_like(v) if v.is_floating_point() else v for k, v in weights.items()}
    save_file(zeroed, str(out_dir / WEIGHTS_FILE))
    shutil.copyfile(model_dir / CONFIG_FILE, out_dir / CONFIG_FILE)
    return out_dir


def gate_degraded_challenger(
    family: str, version: str, root: str | Path, features: str | Path, out_dir: str | Path, cfg: Config
) -> dict[str, Any]:
    """Register version ``version`` of the student ``family`` with zeroed weights, evaluated on
    ``root``'s test split with ``features``, and gate it against the champion (re-evaluated on
    the same split). Returns the decision, the challenger's metrics and the champion before and after."""
    out_dir = Path(out_dir)
    before = current(family, cfg=cfg).champion
    source = download_model_dir(family, version, out_dir / "source", cfg=cfg)
    degraded = degrade_model(source, out_dir / "degraded")
    report = evaluate_student(degraded, features, root, split="test", cfg=cfg, out_dir=out_dir / "eval")
    registered = log_model(
        family,
        degraded / WEIGHTS_FILE,
        degraded / CONFIG_FILE,
        cfg=cfg,
        loader=STUDENT_LOADER,
        metrics=report["metrics"],
        lineage=Lineage(
            data_version=report["data_version"],
            encoder_version=report["features_version"],
            model_version=f"{report['model_version']}-zeroed",
        ),
        description=f"student v{version} with its weights zeroed (a deliberately worse model)",
        run_name="degraded-challenger",
    )
    candidate = str(registered.version)
    reevaluate = champion_reevaluator(family, root, features, cfg=cfg, out_dir=out_dir / "champion-eval")
    decision = gate_version(family, candidate, cfg=cfg, reevaluate_champion=reevaluate)
    after = current(family, cfg=cfg).champion
    return {
        "source_version": version,
        "version": candidate,
        "metrics": {k: report["metrics"].get(k) for k in ("ap", "r_at_p80", "f1")},
        "passed": decision.passed,
        "reasons": decision.reasons,
        "champion_before": before,
        "champion_after": after,
        "champion_unchanged": before == after,
    }
