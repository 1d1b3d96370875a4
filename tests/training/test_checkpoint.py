"""Resumable checkpoints and the shared epoch loop."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from clipguard.training.checkpoint import STATE_FILE, CheckpointState, load_checkpoint, save_checkpoint
from clipguard.training.loop import fit, make_scheduler


class Interrupted(Exception):
    pass


def _setup(seed: int = 0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.2), nn.Linear(8, 1))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    sched = make_scheduler(opt, "cosine", total_steps=12)
    return model, opt, sched


def _batches(epoch: int):
    g = torch.Generator().manual_seed(100 + epoch)
    return [torch.randn(5, 4, generator=g) for _ in range(3)]


def _run(model, opt, sched, ckpt: Path, epochs: int = 4, fail_at: int | None = None):
    calls = {"n": 0}

    def step(x: torch.Tensor):
        calls["n"] += 1
        if fail_at is not None and calls["n"] == fail_at:
            raise Interrupted
        return model(x).pow(2).mean(), {"part": 1.0}

    return fit(
        name="t",
        modules={"model": model},
        optimizer=opt,
        scheduler=sched,
        batches=_batches,
        steps_per_epoch=3,
        step=step,
        epochs=epochs,
        seed=7,
        checkpoint_dir=ckpt,
        run_key="run-a",
        grad_clip=1.0,
        progress=False,
    )


def test_save_load_roundtrip_restores_state_and_weights(tmp_path: Path) -> None:
    model, opt, sched = _setup()
    _run(model, opt, sched, tmp_path / "ck", epochs=2)
    state = CheckpointState("run-b", epoch=2, step=6, history=[{"epoch": 1}, {"epoch": 2}])
    save_checkpoint(tmp_path / "x", state, {"model": model}, opt, sched)

    model2, opt2, sched2 = _setup(seed=1)
    restored = load_checkpoint(tmp_path / "x", "run-b", {"model": model2}, opt2, sched2)
    assert restored is not None
    assert (restored.epoch, restored.step, restored.history) == (2, 6, [{"epoch": 1}, {"epoch": 2}])
    for a, b in zip(model.state_dict().values(), model2.state_dict().values()):
        assert torch.equal(a, b)
    s1, s2 = opt.state_dict(), opt2.state_dict()
    for pid in s1["state"]:
        for k in s1["state"][pid]:
            assert torch.equal(torch.as_tensor(s1["state"][pid][k]), torch.as_tensor(s2["state"][pid][k]))
    assert sched2.state_dict()["last_epoch"] == sched.state_dict()["last_epoch"]
    assert sched2.get_last_lr() == sched.get_last_lr()
    assert len(list((tmp_path / "x").glob("state-e*.safetensors"))) == 1


def test_checkpoint_of_another_run_is_ignored(tmp_path: Path) -> None:
    model, opt, sched = _setup()
    save_checkpoint(tmp_path, CheckpointState("other", 1, 3), {"model": model}, opt, sched)
    fresh, opt2, sched2 = _setup(seed=3)
    before = [p.clone() for p in fresh.parameters()]
    assert load_checkpoint(tmp_path, "mine", {"model": fresh}, opt2, sched2) is None
    assert all(torch.equal(a, b) for a, b in zip(before, fresh.parameters()))
    assert load_checkpoint(tmp_path / "missing", "mine", {"model": fresh}, opt2, sched2) is None


def test_interrupted_fit_resumes_from_last_epoch_identically(tmp_path: Path) -> None:
    reference, opt, sched = _setup()
    history, start = _run(reference, opt, sched, tmp_path / "ref")
    assert start == 0 and [r["epoch"] for r in history] == [1, 2, 3, 4]

    model, opt, sched = _setup()
    with pytest.raises(Interrupted):
        _run(model, opt, sched, tmp_path / "ck", fail_at=8)  # mid-epoch 3
    assert (tmp_path / "ck" / STATE_FILE).is_file()

    model, opt, sched = _setup(seed=5)  # a new process: fresh objects, other init
    history2, start2 = _run(model, opt, sched, tmp_path / "ck")
    assert start2 == 2
    assert [r["epoch"] for r in history2] == [1, 2, 3, 4]
    assert history2[-1]["step"] == 12
    for a, b in zip(reference.state_dict().values(), model.state_dict().values()):
        assert torch.equal(a, b)
    assert [r["loss"] for r in history2] == pytest.approx([r["loss"] for r in history])
