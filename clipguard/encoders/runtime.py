"""Process-level torch settings shared by pretraining, extraction and benchmarks."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, not the machine's core count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def configure_threads(n: int | None = None) -> int:
    """Set torch's intra-op thread count to ``n`` (None: :func:`available_cpus`); return it.

    Over-subscribing a small machine (torch's default can exceed the affinity mask in
    containers) costs more than it gains, so every entry point calls this once.
    """
    import torch

    threads = max(1, n or available_cpus())
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block under ``torch.manual_seed(seed)`` without disturbing the global RNG.

    Hugging Face models draw their random init from the global generator; building them
    inside this block makes a model a pure function of (config, seed).
    """
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def quiet_hf_loading() -> Iterator[None]:
    """Silence transformers' per-file "Loading weights" progress bars inside the block."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()
