"""Cached outputs of the frozen teacher: computed once per (teacher version, data version).

Stage 2 never runs MatchLM: :func:`cache_teacher` scores the pairs of some splits once, in
eval mode, and stores per pair the logits of every task and the pair representation (the
last-token hidden state distilled by eq. 3)::

    <out_dir>/<teacher_version>-<data_version>/
        index.json                 teacher/data version, pair ids (row order), tensor file
        outputs-<hash>.safetensors logits/<task> (N x classes), embedding (N x hidden), float32

A later call with pairs already cached reads the file and runs nothing; one that asks for
more pairs (another split) scores only the missing ones and commits a merged file (tensors
first, then the index that names them). :class:`TeacherOutputs` aligns the cache with any
list of pair ids, and gives the teacher's RCI scores for evaluation.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from clipguard.config import Config
from clipguard.core.io import config_hash, directory_fingerprint, remove_stale_tmp, save_tensors, write_json
from clipguard.data.schema import data_version
from clipguard.encoders.runtime import configure_threads
from clipguard.training.data import load_pairs
from clipguard.training.loop import batched
from clipguard.training.teacher import (
    FORWARD_KEYS,
    MEDIA_SPLITS,
    TRAINING_FILE,
    default_rci_dir,
    drop_undecoded,
    load_teacher,
    media_clip_ids,
)

log = logging.getLogger(__name__)

INDEX_FILE = "index.json"
DEFAULT_SPLITS: tuple[str, ...] = MEDIA_SPLITS


@dataclass
class TeacherTargets:
    """Cached teacher outputs aligned with a dataset's rows (what stage 2 looks up per batch)."""

    logits: dict[str, torch.Tensor]
    embedding: torch.Tensor
    mask: torch.Tensor
    """(N,) bool, False for rows the cache does not cover (they get only the class loss)"""

    def select(self, positions: torch.Tensor) -> TeacherTargets:
        return TeacherTargets({t: v[positions] for t, v in self.logits.items()}, self.embedding[positions], self.mask[positions])


@dataclass
class TeacherOutputs:
    """The teacher's logits and embeddings for a set of pairs."""

    path: Path
    teacher_version: str
    data_version: str
    pair_ids: list[str]
    logits: dict[str, torch.Tensor]
    embedding: torch.Tensor

    def __post_init__(self) -> None:
        self.index = {p: i for i, p in enumerate(self.pair_ids)}

    @property
    def embedding_dim(self) -> int:
        return int(self.embedding.shape[1])

    def align(self, pair_ids: Sequence[str]) -> TeacherTargets:
        """Outputs in the order of ``pair_ids`` (zeros and ``mask=False`` where not cached)."""
        rows = torch.tensor([self.index.get(p, -1) for p in pair_ids], dtype=torch.long)
        mask = rows >= 0
        safe = rows.clamp(min=0)
        logits = {t: v[safe] * mask[:, None] for t, v in self.logits.items()}
        return TeacherTargets(logits, self.embedding[safe] * mask[:, None], mask)

    def scores(self, pair_ids: Sequence[str]) -> np.ndarray:
        """P(reproduced) of ``pair_ids`` (softmax of the cached ``rci`` logits).

        Raises:
            KeyError: a pair is not in the cache.
        """
        missing = [p for p in pair_ids if p not in self.index]
        if missing:
            raise KeyError(f"{len(missing)} pair(s) are not in the teacher cache {self.path}: {missing[:5]}")
        rows = torch.tensor([self.index[p] for p in pair_ids], dtype=torch.long)
        return self.logits["rci"][rows].softmax(dim=-1)[:, 1].numpy().astype(np.float64)


def model_version(model_dir: str | Path) -> str:
    """The version of a model directory: its ``training.json`` version, else a content hash."""
    path = Path(model_dir) / TRAINING_FILE
    if path.is_file():
        return str(json.loads(path.read_text())["version"])
    return "m" + directory_fingerprint(str(Path(model_dir).resolve()))


def teacher_cache_dir(out_dir: str | Path, teacher_ver: str, data_ver: str) -> Path:
    """The cache directory of a (teacher version, data version)."""
    return Path(out_dir) / f"{teacher_ver}-{data_ver}"


def load_teacher_outputs(path: str | Path) -> TeacherOutputs:
    """Read a cache directory written by :func:`cache_teacher`."""
    from safetensors.torch import load_file

    d = Path(path)
    index_path = d / INDEX_FILE
    if not index_path.is_file():
        raise FileNotFoundError(f"{index_path} not found: {d} is not a teacher cache (run cache-teacher)")
    index = json.loads(index_path.read_text())
    tensors = load_file(str(d / index["tensors"]))
    logits = {k.removeprefix("logits/"): v for k, v in tensors.items() if k.startswith("logits/")}
    return TeacherOutputs(d, index["teacher_version"], index["data_version"], index["pair_ids"], logits, tensors["embedding"])


@torch.inference_mode()
def _score(model, dataset, batch_size: int, progress: bool) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    model.eval()
    logits: dict[str, list[torch.Tensor]] = {}
    embeddings: list[torch.Tensor] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, disable=not progress) as bar:
        task = bar.add_task(f"teacher outputs for {len(dataset)} pairs", total=len(dataset))
        for chunk in batched(list(range(len(dataset))), batch_size):
            b = dataset.collate(chunk)
            out = model(**{k: b[k] for k in FORWARD_KEYS})
            for t, v in out.logits.items():
                logits.setdefault(t, []).append(v.float())
            embeddings.append(out.embedding.float())
            bar.advance(task, len(chunk))
    return {t: torch.cat(v) for t, v in logits.items()}, torch.cat(embeddings)


def cache_teacher(
    teacher_dir: str | Path,
    root: str | Path,
    cfg: Config,
    out_dir: str | Path | None = None,
    splits: Sequence[str] = DEFAULT_SPLITS,
    media_dir: str | Path | None = None,
    progress: bool = True,
) -> TeacherOutputs:
    """The frozen teacher's outputs on the pairs of ``splits``, computed only where not cached yet.

    Args:
        teacher_dir: a trained teacher (:func:`clipguard.training.teacher.train_teacher`).
        root: validated data root.
        out_dir: caches root (default ``<work_dir>/rci/teacher_cache``).
        splits: pair splits to cover (train for distillation, val/test for evaluation).
        media_dir: decoded-media cache root (default ``<work_dir>/rci/media``).
    """
    from clipguard.training.media import TeacherPairs, load_or_build_media

    configure_threads(cfg.models.training.torch_threads)
    root = Path(root)
    data_ver = data_version(root)
    teacher_ver = model_version(teacher_dir)
    path = teacher_cache_dir(out_dir if out_dir is not None else default_rci_dir(cfg, "teacher_cache"), teacher_ver, data_ver)
    remove_stale_tmp(path)
    pairs = load_pairs(root, splits)
    previous = json.loads((path / INDEX_FILE).read_text()) if (path / INDEX_FILE).is_file() else None
    cached = load_teacher_outputs(path) if previous is not None else None
    todo = pairs if cached is None else pairs[~pairs["pair_id"].isin(list(cached.index))].reset_index(drop=True)
    if todo.empty and cached is not None:
        log.info("teacher cache %s covers the %d pairs of %s: nothing to compute", path, len(pairs), list(splits))
        return cached

    t0 = time.perf_counter()
    model, processor = load_teacher(teacher_dir)
    clip_ids = media_clip_ids(root, tuple(dict.fromkeys((*MEDIA_SPLITS, *splits))))
    media = load_or_build_media(root, cfg, processor, clip_ids, media_dir or default_rci_dir(cfg, "media"), progress)
    todo = drop_undecoded(todo, list(media.index), "teacher cache")
    dataset = TeacherPairs(todo, media, processor, {})  # scoring needs no labels
    batch_size = max(1, 2 * cfg.models.teacher.batch_size)
    logits, embedding = _score(model, dataset, batch_size, progress)
    pair_ids = list(todo["pair_id"])
    if cached is not None:
        logits = {t: torch.cat((cached.logits[t], v)) for t, v in logits.items()}
        embedding = torch.cat((cached.embedding, embedding))
        pair_ids = cached.pair_ids + pair_ids
    tensors = {f"logits/{t}": v for t, v in logits.items()}
    tensors["embedding"] = embedding
    tensor_file = f"outputs-{config_hash(pair_ids)}.safetensors"
    save_tensors(path / tensor_file, tensors)
    write_json(
        path / INDEX_FILE,
        {
            "teacher_version": teacher_ver,
            "teacher_dir": str(Path(teacher_dir).resolve()),
            "data_version": data_ver,
            "pair_ids": pair_ids,
            "tensors": tensor_file,
            "splits": sorted(set(splits) | set(previous["splits"] if previous else ())),
            "seconds": time.perf_counter() - t0 + (float(previous["seconds"]) if previous else 0.0),
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    )
    for old in path.glob("outputs-*.safetensors"):
        if old.name != tensor_file:
            old.unlink(missing_ok=True)
    log.info("teacher cache %s: %d pairs scored in %.1f s", path, len(todo), time.perf_counter() - t0)
    return load_teacher_outputs(path)
