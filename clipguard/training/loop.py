"""The epoch loop shared by teacher SFT and both student stages.

:func:`fit` runs ``epochs`` epochs of ``step`` over the batches ``batches(epoch)`` yields,
with AdamW (built by the caller), a per-step LR schedule (:func:`make_scheduler`: linear
or cosine decay to zero), optional gradient clipping, a rich progress bar showing the
running loss, and a checkpoint (:mod:`clipguard.training.checkpoint`) after every epoch.

Determinism and resume: every epoch runs under ``torch.manual_seed(epoch_seed(seed,
epoch))`` inside a forked RNG (dropout and the sampler of that epoch depend only on the
run's seed and the epoch number, the caller's RNG is untouched), so a run resumed from
the checkpoint of epoch ``k`` continues exactly as the uninterrupted run would have.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from clipguard.config import Config
from clipguard.core.progress import loss_progress
from clipguard.core.tracking import Lineage, log_metrics, start_run
from clipguard.training.checkpoint import CheckpointState, load_checkpoint, save_checkpoint

StepFn = Callable[[Any], tuple[torch.Tensor, dict[str, float]]]
"""A batch -> (loss to back-propagate, named float parts for logging)."""


def epoch_seed(seed: int, epoch: int) -> int:
    """The RNG seed of epoch ``epoch`` (0-based) of a run seeded with ``seed``."""
    return seed * 100_003 + epoch


def make_scheduler(optimizer: Optimizer, kind: Literal["linear", "cosine"], total_steps: int) -> LambdaLR:
    """Per-step decay of every group's LR from its initial value to 0 over ``total_steps``.

    ``linear``: ``1 - t``; ``cosine``: ``(1 + cos(pi t)) / 2`` (annealing), ``t = step / total``.
    """
    total = max(1, total_steps)

    def linear(step: int) -> float:
        return max(0.0, 1.0 - step / total)

    def cosine(step: int) -> float:
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, step / total)))

    if kind not in ("linear", "cosine"):
        raise ValueError(f"unknown scheduler {kind!r}")
    return LambdaLR(optimizer, linear if kind == "linear" else cosine)


def fit(
    *,
    name: str,
    modules: Mapping[str, nn.Module],
    optimizer: Optimizer,
    scheduler: LambdaLR,
    batches: Callable[[int], Iterable[Any]],
    steps_per_epoch: int,
    step: StepFn,
    epochs: int,
    seed: int,
    checkpoint_dir: Path,
    run_key: str,
    grad_clip: float | None = None,
    on_epoch_end: Callable[[int], dict[str, float]] | None = None,
    on_log: Callable[[dict[str, Any]], None] | None = None,
    progress: bool = True,
) -> tuple[list[dict[str, Any]], int]:
    """Train ``modules`` for ``epochs`` epochs, resuming from ``checkpoint_dir`` when it holds this run.

    Args:
        name: label of the progress bars.
        modules: what the checkpoint saves and restores (put every trained module here);
            they are switched to train mode for the steps.
        batches: ``epoch -> iterable of batches`` (called once per epoch, under the epoch's seed).
        steps_per_epoch: number of batches per epoch (the progress bar's total).
        step: computes a batch's loss; ``fit`` does backward, clipping and the optimizer step.
        on_epoch_end: optional ``epoch -> metrics`` (e.g. validation) stored in the history.
        on_log: optional callback receiving each finished epoch's record (MLflow logging).
    Returns:
        the per-epoch history (loss, parts, seconds, metrics) and the epoch this call resumed
        from (0 when it started fresh).
    """
    state = load_checkpoint(checkpoint_dir, run_key, modules, optimizer, scheduler) or CheckpointState(run_key, 0, 0)
    start = state.epoch
    params = [p for group in optimizer.param_groups for p in group["params"]]
    with loss_progress(progress, transient=False) as bar:
        for epoch in range(start, epochs):
            task = bar.add_task(f"{name} epoch {epoch + 1}/{epochs}", total=steps_per_epoch, loss=float("nan"))
            t0 = time.perf_counter()
            totals: dict[str, float] = {}
            n = 0
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(epoch_seed(seed, epoch))
                for module in modules.values():
                    module.train()
                for batch in batches(epoch):
                    loss, parts = step(batch)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    if grad_clip is not None:
                        nn.utils.clip_grad_norm_(params, grad_clip)
                    optimizer.step()
                    scheduler.step()
                    state.step += 1
                    n += 1
                    value = float(loss.detach())
                    totals["loss"] = totals.get("loss", 0.0) + value
                    for key, part in parts.items():
                        totals[key] = totals.get(key, 0.0) + part
                    bar.update(task, advance=1, loss=totals["loss"] / n)
            record: dict[str, Any] = {"epoch": epoch + 1, "step": state.step, "seconds": time.perf_counter() - t0}
            record.update({k: v / max(1, n) for k, v in totals.items()})
            record["lr"] = scheduler.get_last_lr()[0]
            if on_epoch_end is not None:
                for module in modules.values():
                    module.eval()
                record["val"] = on_epoch_end(epoch)
            state.epoch = epoch + 1
            state.history.append(record)
            save_checkpoint(checkpoint_dir, state, modules, optimizer, scheduler)
            if on_log is not None:
                on_log(record)
    for module in modules.values():
        module.eval()
    return state.history, start


def batched(items: list[int], size: int) -> Iterator[list[int]]:
    """Consecutive chunks of ``items`` of at most ``size`` elements."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


@contextlib.contextmanager
def tracked_run(
    enabled: bool,
    run_name: str,
    cfg: Config,
    lineage: Lineage,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
) -> Iterator[bool]:
    """An MLflow run via :func:`clipguard.core.tracking.start_run` (nested inside an active
    run), or nothing when ``enabled`` is False; yields whether a run is active."""
    if not enabled:
        yield False
        return
    import mlflow

    with start_run(run_name, cfg=cfg, lineage=lineage, params=params, tags=tags, nested=mlflow.active_run() is not None):
        yield True


def epoch_logger(active: bool) -> Callable[[dict[str, Any]], None] | None:
    """A :func:`fit` ``on_log`` callback logging an epoch's numeric fields to the active MLflow
    run (step = epoch), or None when ``active`` is False."""
    if not active:
        return None

    def on_log(record: dict[str, Any]) -> None:
        log_metrics({k: v for k, v in record.items() if k != "epoch"}, step=int(record["epoch"]))

    return on_log


def result_run_fields(meta: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """The run fields every training result shares (``epochs``, ``epochs_run``,
    ``resumed_from_epoch``, ``skipped``, ``train_seconds``, ``history``), from the model's
    saved ``meta`` and what this call did (``override``; none: a finished model reused as is)."""
    return {
        "epochs": int(meta["epochs"]),
        "epochs_run": int(override.get("epochs_run", 0)),
        "resumed_from_epoch": int(override.get("resumed_from_epoch", meta["epochs"])),
        "skipped": bool(override.get("skipped", True)),
        "train_seconds": float(meta["train_seconds"]),
        "history": list(meta["history"]),
    }
