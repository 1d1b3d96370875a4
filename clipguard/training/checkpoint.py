"""Resumable epoch checkpoints of a training run, without pickle.

A checkpoint directory holds one committed state::

    <dir>/state.json                  what was committed: run key, epoch, step, history,
                                      optimizer param groups, scheduler state, tensor file
    <dir>/state-e0003.safetensors     module weights/buffers and optimizer state tensors

The tensors of epoch ``k`` go to their own file first; the JSON that names that file is
written second, atomically, and commits the checkpoint; older tensor files are removed
after the commit. A run killed at any point therefore finds either the previous
checkpoint or the new one, never a JSON that points at half-written tensors.

Tensors use the keys ``module/<name>/<state-dict key>`` and
``optim/<param index>/<state key>`` (AdamW's ``step``, ``exp_avg``, ``exp_avg_sq``); the
optimizer's param groups and the LR scheduler's ``state_dict`` are plain JSON. The
``run_key`` ties a checkpoint to the inputs and configuration of its run: a checkpoint
written with another key is ignored (and overwritten by the next save).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from clipguard.core.io import remove_stale_tmp, save_tensors, write_json

STATE_FILE = "state.json"
FORMAT = "clipguard-checkpoint/1"


@dataclass
class CheckpointState:
    """What a checkpoint restores besides the tensors: where the run stands and what it logged."""

    run_key: str
    epoch: int
    """epochs completed"""
    step: int
    """optimizer steps taken"""
    history: list[dict[str, Any]] = field(default_factory=list)
    """one record per completed epoch (losses, validation metrics, seconds)"""


def _tensor_file(epoch: int) -> str:
    return f"state-e{epoch:04d}.safetensors"


def _optimizer_tensors(optimizer: Optimizer) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    for pid, values in state["state"].items():
        for name, value in values.items():
            tensors[f"optim/{pid}/{name}"] = torch.as_tensor(value)
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in state["param_groups"]]
    return tensors, groups


def save_checkpoint(
    directory: str | Path,
    state: CheckpointState,
    modules: Mapping[str, nn.Module],
    optimizer: Optimizer,
    scheduler: LRScheduler | None = None,
) -> Path:
    """Commit an epoch checkpoint of ``modules`` + ``optimizer`` (+ ``scheduler``) to ``directory``."""
    d = Path(directory)
    tensors: dict[str, torch.Tensor] = {}
    for name, module in modules.items():
        if "/" in name:
            raise ValueError(f"module name {name!r} must not contain '/'")
        tensors.update({f"module/{name}/{k}": v for k, v in module.state_dict().items()})
    optim_tensors, groups = _optimizer_tensors(optimizer)
    tensors.update(optim_tensors)
    tensor_file = _tensor_file(state.epoch)
    save_tensors(d / tensor_file, tensors, metadata={"format": FORMAT})
    write_json(
        d / STATE_FILE,
        {
            "format": FORMAT,
            "run_key": state.run_key,
            "epoch": state.epoch,
            "step": state.step,
            "history": state.history,
            "tensors": tensor_file,
            "param_groups": groups,
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
        },
    )
    for old in d.glob("state-e*.safetensors"):
        if old.name != tensor_file:
            old.unlink(missing_ok=True)
    return d


def load_checkpoint(
    directory: str | Path,
    run_key: str,
    modules: Mapping[str, nn.Module],
    optimizer: Optimizer,
    scheduler: LRScheduler | None = None,
) -> CheckpointState | None:
    """Restore the checkpoint in ``directory`` into the given objects, if it belongs to ``run_key``.

    Returns its :class:`CheckpointState`, or None when there is no committed checkpoint
    or it was written by another run (nothing is modified then).
    """
    from safetensors.torch import load_file

    d = Path(directory)
    remove_stale_tmp(d)
    path = d / STATE_FILE
    if not path.is_file():
        return None
    meta = json.loads(path.read_text())
    if meta.get("format") != FORMAT or meta.get("run_key") != run_key:
        return None
    tensors = load_file(str(d / meta["tensors"]))
    for name, module in modules.items():
        prefix = f"module/{name}/"
        module.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
    optim_state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim/"):
            _, pid, name = key.split("/", 2)
            optim_state.setdefault(int(pid), {})[name] = value
    optimizer.load_state_dict({"state": optim_state, "param_groups": meta["param_groups"]})
    if scheduler is not None and meta.get("scheduler") is not None:
        scheduler.load_state_dict(meta["scheduler"])
    return CheckpointState(run_key, int(meta["epoch"]), int(meta["step"]), list(meta["history"]))
