"""The progress bar of every training loop: description, bar, steps done, running loss, time."""

from __future__ import annotations

from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def loss_progress(enabled: bool = True, **kwargs: Any) -> Progress:
    """A ``rich`` progress bar whose tasks carry a ``loss`` field (``bar.add_task(..., loss=nan)``,
    then ``bar.update(task, advance=1, loss=value)``); ``enabled=False`` draws nothing."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}"),
        TimeElapsedColumn(),
    )
    return Progress(*columns, disable=not enabled, **kwargs)
