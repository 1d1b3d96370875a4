"""Per-subset RCI metrics: which kinds of copies a model finds, and which non-copies fool it.

A subset is a boolean mask over the evaluated pairs. Two kinds exist, because some pair
attributes only exist on one class:

* **positive subsets** select *copies* of a kind and keep every negative, so AP / R@P80
  answer "how well are these copies ranked above the non-copies": ``reason_visual``,
  ``reason_audio``, ``reason_text`` (the modality that decides the copy), ``heldout_edit``
  and ``heldout_edit/<type>`` (edit families never seen in training), ``trend_edit``;
* **pair subsets** keep both classes where the attribute holds: ``heldout_source`` (pairs
  made from source media never seen in training);
* **negative subsets** keep every positive and only negatives of a kind:
  ``hard_negatives`` (look-alikes that are not copies); their false-positive rate at the
  validation threshold is the number to watch.

:func:`subset_masks` builds the masks from the pair manifest (columns that are absent are
skipped) and :func:`subset_metrics` computes :func:`clipguard.core.metrics.binary_metrics`
on each; a subset without positives gets ``nan`` AP/R@P80 and still its FPR.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from clipguard.core.metrics import binary_metrics
from clipguard.data.schema import PAIR_REASONS
from clipguard.training.data import split_edits

ALL = "all"


def subset_masks(pairs: pd.DataFrame, heldout_edit_types: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """Name -> boolean mask (over ``pairs`` rows) of every subset the manifest supports.

    ``heldout_edit_types`` names the held-out edit families (``corpus.json``'s
    ``edit_types.heldout``) that get a subset each; the ``heldout_edit`` subset uses the
    pairs' own ``heldout_edit`` flag.
    """
    label = pairs["label"].to_numpy(dtype=np.int64)
    pos, neg = label == 1, label == 0
    masks: dict[str, np.ndarray] = {ALL: np.ones(len(pairs), dtype=bool)}
    if "reason" in pairs:
        reason = pairs["reason"].to_numpy()
        for r in PAIR_REASONS:
            if r != "none":
                masks[f"reason_{r}"] = (pos & (reason == r)) | neg
    if "heldout_edit" in pairs:
        masks["heldout_edit"] = (pos & pairs["heldout_edit"].to_numpy(dtype=bool)) | neg
        if "edit_types" in pairs and heldout_edit_types:
            edits = [set(split_edits(e)) for e in pairs["edit_types"]]
            for kind in heldout_edit_types:
                has = np.array([kind in e for e in edits], dtype=bool)
                masks[f"heldout_edit/{kind}"] = (pos & has) | neg
    if "trend_edit" in pairs:
        masks["trend_edit"] = (pos & pairs["trend_edit"].to_numpy(dtype=bool)) | neg
    if "heldout_source" in pairs:
        masks["heldout_source"] = pairs["heldout_source"].to_numpy(dtype=bool)
    if "hard_negative" in pairs:
        masks["hard_negatives"] = pos | (neg & pairs["hard_negative"].to_numpy(dtype=bool))
    return masks


def subset_metrics(
    labels: ArrayLike, scores: ArrayLike, masks: Mapping[str, np.ndarray], threshold: float | None = None
) -> dict[str, dict[str, float]]:
    """:func:`binary_metrics` (at ``threshold``) of every non-empty subset."""
    y = np.asarray(labels, dtype=np.int64)
    s = np.asarray(scores, dtype=np.float64)
    out: dict[str, dict[str, float]] = {}
    for name, mask in masks.items():
        m = np.asarray(mask, dtype=bool)
        if m.shape != y.shape:
            raise ValueError(f"subset {name!r}: mask of {m.shape[0]} rows for {y.shape[0]} pairs")
        if m.any():
            out[name] = binary_metrics(y[m], s[m], threshold)
    return out
