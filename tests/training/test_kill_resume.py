"""Fault injection: a training process killed (SIGKILL) mid-epoch resumes from its last
committed checkpoint and reaches the same weights as a run that was never interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import torch

from clipguard.training.checkpoint import STATE_FILE
from clipguard.training.student import load_student, train_student
from tests.rci_fixtures import TINY_RCI_OVERRIDES, RCIWorld
from tests.training.conftest import rci_config

# the child trains exactly as the parent does, each forward pass slowed down so that the parent
# can kill it between the first epoch's checkpoint and the end of the second epoch
CHILD = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    import torch
    from clipguard.config import load_config
    from clipguard.models.matchlite import MatchLiteForPairClassification
    from clipguard.training.student import train_student

    args = json.loads(sys.argv[1])
    torch.set_num_threads(1)
    forward = MatchLiteForPairClassification.forward

    def slow(self, *a, **k):
        time.sleep(0.5)
        return forward(self, *a, **k)

    MatchLiteForPairClassification.forward = slow
    cfg = load_config("local", args["overrides"])
    train_student(Path(args["root"]), Path(args["features"]), cfg, Path(args["out"]), stages=1, progress=False, track=False)
    """
)


def _committed_epoch(out: Path) -> int:
    for state in out.glob(f"*/checkpoint/{STATE_FILE}"):
        try:
            return int(json.loads(state.read_text())["epoch"])
        except (ValueError, KeyError, OSError):  # being replaced right now
            continue
    return 0


def test_a_killed_training_process_resumes_to_identical_weights(rci_world: RCIWorld, tmp_path: Path) -> None:
    overrides = {**TINY_RCI_OVERRIDES, "work_dir": str(tmp_path / "runs"), "models.distill.mode": "off"}
    cfg = rci_config(tmp_path / "runs", **{"models.distill.mode": "off"})
    assert cfg.models.student.epochs >= 2
    reference = train_student(
        rci_world.root, rci_world.features_dir, cfg, tmp_path / "ref", stages=1, progress=False, track=False
    )

    out = tmp_path / "killed"
    args = {"overrides": overrides, "root": str(rci_world.root), "features": str(rci_world.features_dir), "out": str(out)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(args)], cwd=Path(__file__).parents[2])
    try:
        deadline = time.monotonic() + 300
        while _committed_epoch(out) < 1:
            assert child.poll() is None, f"the training process ended (code {child.returncode}) before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint after 300 s"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)  # mid-epoch 2: epoch 1 committed, epoch 2 not
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
    assert _committed_epoch(out) == 1, "the kill came after the second epoch had committed"

    resumed = train_student(rci_world.root, rci_world.features_dir, cfg, out, stages=1, progress=False, track=False)

    assert resumed.resumed_from_epoch == 1 and resumed.epochs_run == cfg.models.student.epochs - 1
    assert resumed.version == reference.version
    a, b = load_student(reference.model_dir).state_dict(), load_student(resumed.model_dir).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.history[-1]["val"] == reference.history[-1]["val"]
