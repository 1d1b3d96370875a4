"""RCI pair data: manifests, multi-task labels, the student's feature bank, sampling, collation.

* :func:`load_pairs` — the accepted pairs of some splits (``<root>/validated/pairs.parquet``).
* :func:`task_labels` — per-task class ids of eq. 1: ``rci`` (0/1), ``reason``
  (visual/audio/text/none) and ``edit`` (none + the corpus's train edit families; see
  :func:`edit_label`). A pair without a label for a task gets ``IGNORE_INDEX``.
* :class:`FeatureBank` — the cached encoder tokens of every clip a set of pairs needs, read
  once from the feature files (:class:`clipguard.features.store_format.TokenStore`) into
  dense float16 tensors; a batch is an index lookup, so an epoch never touches the disk.
  Sequences longer than the student's ``max_*_tokens`` are subsampled uniformly; with
  ``resample_time`` every visual/audio sequence is resampled to exactly that many tokens
  (:func:`clipguard.models.frames.token_indices`), so a clip's duration is not visible.
* :class:`StudentPairs` — a map-style dataset of pair positions whose :meth:`StudentPairs.collate`
  builds a :class:`PairBatch` (query / candidate :class:`~clipguard.models.matchlite.ClipFeatures`,
  labels, positions for looking up cached teacher outputs).
* :func:`epoch_loader` — a ``DataLoader`` over a dataset for one epoch, shuffled or
  class-balanced (:func:`class_balanced_sampler`), seeded by (run seed, epoch).

Class imbalance: RCI positives are ~5% of pairs. clipguard balances with a sampler
(``cfg.models.training.balance = "sampler"``): each epoch draws ``len(dataset)`` pairs with
replacement, positives and negatives with equal total probability. The loss stays the
unweighted eq. 1 (the shared :func:`clipguard.models.kd.multitask_cross_entropy`), so
teacher and student, and stage 1 and stage 2, see the same objective.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler, Sampler, WeightedRandomSampler

from clipguard.config import MatchLiteArchitecture
from clipguard.data.schema import PAIR_REASONS
from clipguard.encoders.inputs import read_accepted
from clipguard.features.store_format import TokenStore
from clipguard.models.frames import TIME_MODALITIES, token_indices
from clipguard.models.kd import IGNORE_INDEX
from clipguard.models.matchlite import VIEWS_BY_MODALITIES, ClipFeatures

log = logging.getLogger(__name__)

CORPUS_FILE = "corpus.json"
NO_EDIT = "none"
_VIEW_MODALITY = {"v": "visual", "a": "audio", "t": "text"}


def load_pairs(root: str | Path, splits: Sequence[str]) -> pd.DataFrame:
    """The accepted pairs of ``splits``, sorted by ``pair_id`` (index 0..n-1)."""
    pairs = read_accepted(root, "pairs")
    pairs = pairs[pairs["split"].isin(list(splits))].sort_values("pair_id").reset_index(drop=True)
    if pairs.empty:
        raise ValueError(f"{root}: no accepted pairs in splits {list(splits)}")
    return pairs


def read_corpus_info(root: str | Path) -> dict:
    """``<root>/corpus.json`` (synthetic corpora), or ``{}`` for a data root without one."""
    path = Path(root) / CORPUS_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def split_edits(value: object) -> list[str]:
    """The edit names of a pair's ``edit_types`` cell (a comma-separated string, a list/array, or missing)."""
    if isinstance(value, str):
        items: Iterable[object] = value.split(",")
    elif isinstance(value, Iterable):
        items = value
    else:  # None / NaN: no edits
        items = ()
    return [str(e).strip() for e in items if str(e).strip()]


@dataclass(frozen=True)
class EditVocabulary:
    """Classes of the auxiliary ``edit`` task: ``none`` then the train edit families.

    ``neutral`` edits (audio-only edits) do not change the family: a copy with only those
    is labelled ``none``; any other edit outside ``families`` (held-out or trend edits,
    never seen in training) leaves the pair without an edit label.
    """

    families: tuple[str, ...]
    neutral: tuple[str, ...] = ()

    @property
    def classes(self) -> tuple[str, ...]:
        return (NO_EDIT, *self.families)

    @classmethod
    def from_corpus(cls, root: str | Path) -> EditVocabulary | None:
        """The vocabulary ``corpus.json`` declares (its ``edit_types``), or None without one."""
        edits = read_corpus_info(root).get("edit_types")
        if not edits:
            return None
        return cls(tuple(edits.get("train", ())), tuple(edits.get("audio", ())))


def edit_label(edits: Sequence[str], label: int, vocab: EditVocabulary) -> int:
    """The ``edit`` class of a pair: its first train-family edit, ``none`` for a copy with no
    visual/temporal edit, ``IGNORE_INDEX`` for non-copies and for unseen edit families."""
    if label != 1:
        return IGNORE_INDEX
    for e in edits:
        if e in vocab.families:
            return vocab.classes.index(e)
    if all(e in vocab.neutral for e in edits):
        return 0
    return IGNORE_INDEX


def task_labels(pairs: pd.DataFrame, tasks: Mapping[str, int], vocab: EditVocabulary | None) -> dict[str, np.ndarray]:
    """Class ids (int64, ``IGNORE_INDEX`` where unknown) of every configured task, per pair row.

    ``rci``: the pair label. ``reason``: index in ``PAIR_REASONS``. ``edit``: see
    :func:`edit_label` (all ignored without a vocabulary or an ``edit_types`` column).
    Any other task has no source in the pair manifest and is ignored everywhere.
    """
    n = len(pairs)
    labels = pairs["label"].to_numpy(dtype=np.int64)
    out: dict[str, np.ndarray] = {}
    for task, classes in tasks.items():
        if task == "rci":
            out[task] = labels.copy()
        elif task == "reason" and "reason" in pairs:
            if classes != len(PAIR_REASONS):
                raise ValueError(f"task 'reason' has {classes} classes; the pair reasons are {PAIR_REASONS}")
            out[task] = np.array([PAIR_REASONS.index(r) for r in pairs["reason"]], dtype=np.int64)
        elif task == "edit" and vocab is not None and "edit_types" in pairs:
            if classes != len(vocab.classes):
                raise ValueError(
                    f"task 'edit' has {classes} classes but the corpus has {len(vocab.classes)} "
                    f"({', '.join(vocab.classes)}): set models.tasks.edit accordingly"
                )
            out[task] = np.array(
                [edit_label(split_edits(e), int(y), vocab) for e, y in zip(pairs["edit_types"], labels)], dtype=np.int64
            )
        else:
            out[task] = np.full(n, IGNORE_INDEX, dtype=np.int64)
    return out


def student_modalities(modalities: str) -> tuple[str, ...]:
    """The feature modalities a ``modalities`` setting (v, va, vt, vat) reads."""
    views = VIEWS_BY_MODALITIES[modalities]
    return tuple(m for key, m in _VIEW_MODALITY.items() if key in views)


class FeatureBank:
    """Dense, in-memory cached tokens of a set of clips (float16, zero-padded, with masks)."""

    def __init__(self, clip_ids: list[str], tokens: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> None:
        self.clip_ids = clip_ids
        self.index = {c: i for i, c in enumerate(clip_ids)}
        self.tokens = tokens
        self.masks = masks

    @classmethod
    def load(
        cls,
        features_dir: str | Path,
        clip_ids: Sequence[str],
        limits: Mapping[str, int],
        chunk: int = 256,
        resample: Collection[str] = (),
    ) -> FeatureBank:
        """Read ``clip_ids``' tokens of the modalities in ``limits`` (modality -> max tokens).

        Modalities in ``resample`` are resampled to exactly their limit
        (:func:`clipguard.models.frames.token_indices`), the others subsampled when longer.

        Raises:
            KeyError: a clip has no extracted features.
        """
        store = TokenStore(features_dir)
        ids = sorted(set(clip_ids))
        missing = [c for c in ids if c not in store]
        if missing:
            raise KeyError(f"{len(missing)} clip(s) have no features in {store.root}: {missing[:5]}")
        tokens: dict[str, torch.Tensor] = {}
        masks: dict[str, torch.Tensor] = {}
        for start in range(0, len(ids), chunk):
            batch = store.load(ids[start : start + chunk], tuple(limits), dtype=torch.float16)
            for modality, limit in limits.items():
                x, m = batch.tokens[modality], batch.masks[modality]
                if modality not in tokens:
                    tokens[modality] = torch.zeros(len(ids), limit, x.shape[2], dtype=torch.float16)
                    masks[modality] = torch.zeros(len(ids), limit, dtype=torch.bool)
                for row in range(x.shape[0]):
                    length = int(m[row].sum())
                    keep = list(token_indices(length, limit, modality in resample))
                    tokens[modality][start + row, : len(keep)] = x[row, keep]
                    masks[modality][start + row, : len(keep)] = True
        return cls(ids, tokens, masks)

    @classmethod
    def for_student(cls, features_dir: str | Path, clip_ids: Sequence[str], student: MatchLiteArchitecture) -> FeatureBank:
        """The bank a student with these settings reads (its modalities, its ``max_*_tokens``)."""
        limits = {
            "visual": student.max_visual_tokens,
            "audio": student.max_audio_tokens,
            "text": student.max_text_tokens,
        }
        return cls.load(
            features_dir,
            clip_ids,
            {m: limits[m] for m in student_modalities(student.modalities)},
            resample=TIME_MODALITIES if student.resample_time else (),
        )

    def rows(self, clip_ids: Sequence[str]) -> torch.Tensor:
        """Bank rows of ``clip_ids``."""
        return torch.tensor([self.index[c] for c in clip_ids], dtype=torch.long)

    def features(self, rows: torch.Tensor) -> ClipFeatures:
        """The :class:`ClipFeatures` (float32) of bank ``rows``."""

        def get(m: str) -> tuple[torch.Tensor | None, torch.Tensor | None]:
            if m not in self.tokens:
                return None, None
            return self.tokens[m][rows].float(), self.masks[m][rows]

        visual, visual_mask = get("visual")
        if visual is None or visual_mask is None:
            raise ValueError("the feature bank holds no visual tokens")
        audio, audio_mask = get("audio")
        text, text_mask = get("text")
        return ClipFeatures(visual, visual_mask, audio, audio_mask, text, text_mask)


@dataclass
class PairBatch:
    """A collated batch of pairs for the student."""

    positions: torch.Tensor
    """(B,) row positions in the dataset (to look up cached teacher outputs)"""
    query: ClipFeatures
    candidate: ClipFeatures
    labels: dict[str, torch.Tensor]


class LabelledPairs(Dataset[int]):
    """Labelled pairs whose query and candidate are rows of a store of clips; items are row
    positions (a subclass's ``collate`` builds the batches)."""

    query_rows: torch.Tensor | list[int]
    candidate_rows: torch.Tensor | list[int]

    def __init__(
        self,
        pairs: pd.DataFrame,
        query_rows: torch.Tensor | list[int],
        candidate_rows: torch.Tensor | list[int],
        labels: Mapping[str, np.ndarray],
    ) -> None:
        self.pairs = pairs
        self.query_rows = query_rows
        self.candidate_rows = candidate_rows
        self.labels = {t: torch.as_tensor(v, dtype=torch.long) for t, v in labels.items()}

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> int:
        return index

    @property
    def rci(self) -> np.ndarray:
        """The main-task labels (0/1) of every pair."""
        return self.pairs["label"].to_numpy(dtype=np.int64)


class StudentPairs(LabelledPairs):
    """Pairs over a :class:`FeatureBank`; items are row positions, :meth:`collate` builds batches."""

    query_rows: torch.Tensor
    candidate_rows: torch.Tensor

    def __init__(self, pairs: pd.DataFrame, bank: FeatureBank, labels: Mapping[str, np.ndarray]) -> None:
        super().__init__(pairs, bank.rows(list(pairs["query_clip_id"])), bank.rows(list(pairs["candidate_clip_id"])), labels)
        self.bank = bank

    def collate(self, positions: Sequence[int], swap_seed: int | None = None) -> PairBatch:
        """The batch of pairs at ``positions``.

        With ``swap_seed``, query and candidate trade places in a random half of the pairs
        (drawn from the seed and the positions, so a resumed epoch swaps the same pairs):
        a copy pair says nothing about which side is the original.
        """
        idx = torch.as_tensor(list(positions), dtype=torch.long)
        query_rows, candidate_rows = self.query_rows[idx], self.candidate_rows[idx]
        if swap_seed is not None and len(idx):
            mix = (int(swap_seed) * 1_000_003 + int((idx * 7919).sum())) % (2**63 - 1)
            swap = torch.rand(len(idx), generator=torch.Generator().manual_seed(mix)) < 0.5
            query_rows, candidate_rows = (
                torch.where(swap, candidate_rows, query_rows),
                torch.where(swap, query_rows, candidate_rows),
            )
        return PairBatch(
            positions=idx,
            query=self.bank.features(query_rows),
            candidate=self.bank.features(candidate_rows),
            labels={t: v[idx] for t, v in self.labels.items()},
        )


def class_balanced_sampler(labels: np.ndarray, num_samples: int, generator: torch.Generator) -> WeightedRandomSampler:
    """Draws ``num_samples`` indices with replacement, each class with total probability 1/#classes."""
    values, counts = np.unique(labels, return_counts=True)
    per_class = {v: 1.0 / (len(values) * c) for v, c in zip(values, counts)}
    weights = [float(per_class[v]) for v in labels]
    return WeightedRandomSampler(weights, num_samples=num_samples, replacement=True, generator=generator)


def epoch_loader(
    dataset: Dataset[int],
    labels: np.ndarray,
    batch_size: int,
    balance: str,
    seed: int,
    collate_fn: Callable[[list[int]], Any],
) -> DataLoader:
    """One epoch of ``dataset`` in batches: class-balanced (``balance="sampler"``) or shuffled."""
    generator = torch.Generator().manual_seed(seed)
    sampler: Sampler[int]
    if balance == "sampler":
        sampler = class_balanced_sampler(labels, len(labels), generator)
    elif balance == "none":
        sampler = RandomSampler(dataset, generator=generator)  # type: ignore[arg-type]
    else:
        raise ValueError(f"unknown balance {balance!r} (sampler, none)")
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=collate_fn, num_workers=0)
