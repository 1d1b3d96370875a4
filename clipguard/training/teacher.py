"""Stage 1 for the teacher: supervised fine-tuning of MatchLM on the train pairs (§3.4.1, D.2).

:func:`train_teacher` builds MatchLM from ``cfg.models.teacher`` (``local``: a small
random-init LLaVA-OneVision + Whisper, fully fine-tuned; ``gpu``: LLaVA-OV-0.5B + Whisper
from local checkpoints with LoRA), and trains it with the multi-task cross-entropy of
eq. 1 using AdamW and a linearly decaying learning rate (``cfg.models.teacher``), on
class-balanced batches (:mod:`clipguard.training.data`). Its inputs are the decoded media
(:mod:`clipguard.training.media`): the raw frames of both videos at the SigLIP size
(dynamic frame allocation), their Whisper log-mels and their texts, in one interleaved
sequence per pair.

What should make the teacher the stronger model, locally too: it reads pixels of up to
``frame_budget`` frames per pair through its own, trainable vision tower (SigLIP patches,
``tokens_per_frame`` tokens per frame after 2x2 pooling) where the student gets one frozen
Swin vector per frame; it reads the full log-mel through a trainable Whisper where the
student gets frozen, pooled audio tokens; it fuses everything early, in one sequence, with
full self-attention between the two videos; and every weight is fine-tuned. Locally,
though, its backbones start from random weights (no pretrained LLaVA-OV/Whisper offline),
so with few training positives that capacity can just as well overfit: whether the
teacher wins on a corpus is measured, not assumed (``teacher`` ablation of
:func:`clipguard.eval.ablation.run_ablations`).

Artifacts: ``<out_dir>/<teacher_version>/`` with ``config.json`` + ``model.safetensors``
(``save_pretrained``), the tokenizer (``tokenizer/``) and ``training.json`` (lineage,
history, timings). The version hashes everything that determines the weights (teacher and
training settings, media settings, data version, tokenizer, seed); a complete version is
never retrained, an interrupted one resumes from its last epoch checkpoint.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from clipguard.config import Config
from clipguard.core.io import config_hash, directory_fingerprint, write_json
from clipguard.core.tracking import Lineage, log_json
from clipguard.data.schema import data_version
from clipguard.encoders.runtime import configure_threads, seeded
from clipguard.training.data import EditVocabulary, epoch_loader, load_pairs, task_labels
from clipguard.training.loop import epoch_logger, epoch_seed, fit, make_scheduler, result_run_fields, tracked_run

log = logging.getLogger(__name__)

TRAINING_FILE = "training.json"
TOKENIZER_SUBDIR = "tokenizer"
CHECKPOINT_SUBDIR = "checkpoint"
TRAIN_SPLIT = "train"
EVAL_SPLITS: tuple[str, ...] = ("val", "test")
MEDIA_SPLITS: tuple[str, ...] = (TRAIN_SPLIT, *EVAL_SPLITS)
"""splits whose clips go into one shared media cache (training, caching, evaluation)"""
FORWARD_KEYS = ("input_ids", "attention_mask", "pixel_values_videos", "frame_mask", "audio_features", "audio_mask")


@dataclass(frozen=True)
class TeacherResult:
    """Outcome of :func:`train_teacher` (or of finding the version already trained)."""

    model_dir: Path
    version: str
    seed: int
    data_version: str
    train_pairs: int
    n_parameters: int
    epochs: int
    epochs_run: int
    """epochs trained by this call (0 when the version was complete)"""
    resumed_from_epoch: int
    skipped: bool
    train_seconds: float
    """training time summed over every call that built this version"""
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["model_dir"] = str(self.model_dir)
        return d


def default_rci_dir(cfg: Config, name: str) -> Path:
    """``<cfg.work_dir>/rci/<name>``: where RCI artifacts go when no directory is given."""
    return Path(cfg.work_dir) / "rci" / name


def load_teacher_tokenizer(cfg: Config):
    """The tokenizer ``cfg.models.teacher`` selects, with MatchLM's special tokens."""
    from clipguard.models.tokenizer import load_tokenizer, resolve_tokenizer_path

    teacher = cfg.models.teacher
    return load_tokenizer(resolve_tokenizer_path(teacher.tokenizer_path, teacher.checkpoint_dir))


def teacher_version(cfg: Config, data_ver: str, seed: int, tokenizer_dir: Path) -> str:
    """``t`` + a hash of everything that determines the teacher's trained weights."""
    training = cfg.models.training.model_dump(mode="json", exclude={"torch_threads", "eval_batch_size"})
    return "t" + config_hash(
        {
            "teacher": cfg.models.teacher.model_dump(mode="json"),
            "tasks": dict(cfg.models.tasks),
            "training": training,
            "media": {"fps": cfg.media.fps, "sample_rate": cfg.media.sample_rate},
            "data_version": data_ver,
            "tokenizer": directory_fingerprint(str(tokenizer_dir)),
            "seed": seed,
        }
    )


def load_teacher(model_dir: str | Path):
    """A trained teacher directory -> (model in eval mode, its processor)."""
    from clipguard.models.matchlm import MatchLMForPairClassification, MatchLMProcessor
    from clipguard.models.tokenizer import load_tokenizer

    d = Path(model_dir)
    model = MatchLMForPairClassification.from_pretrained(d).eval()
    processor = MatchLMProcessor(load_tokenizer(d / TOKENIZER_SUBDIR), model.config)
    return model, processor


def read_training_meta(model_dir: str | Path) -> dict[str, Any]:
    """``training.json`` of a model directory written by clipguard.training."""
    path = Path(model_dir) / TRAINING_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {model_dir} is not a complete model directory")
    return json.loads(path.read_text())


def media_clip_ids(root: str | Path, splits: tuple[str, ...] = MEDIA_SPLITS) -> list[str]:
    """The clips of every pair in ``splits`` (the teacher's media cache covers them all)."""
    pairs = load_pairs(root, splits)
    return sorted(set(pairs["query_clip_id"]) | set(pairs["candidate_clip_id"]))


def drop_undecoded(pairs: pd.DataFrame, decoded: Iterable[str], what: str) -> pd.DataFrame:
    """The pairs whose two clips are both in ``decoded``; a warning names how many were dropped."""
    available = set(decoded)
    keep = pairs["query_clip_id"].isin(available) & pairs["candidate_clip_id"].isin(available)
    if not keep.all():
        log.warning("%s: %d pair(s) skipped, a clip did not decode/extract", what, int((~keep).sum()))
    return pairs[keep].reset_index(drop=True)


def _result(model_dir: Path, meta: dict[str, Any], **override: Any) -> TeacherResult:
    return TeacherResult(
        model_dir=model_dir,
        version=meta["version"],
        seed=int(meta["seed"]),
        data_version=meta["data_version"],
        train_pairs=int(meta["train_pairs"]),
        n_parameters=int(meta["n_parameters"]),
        **result_run_fields(meta, override),
    )


def train_teacher(
    root: str | Path,
    cfg: Config,
    out_dir: str | Path | None = None,
    seed: int | None = None,
    media_dir: str | Path | None = None,
    progress: bool = True,
    track: bool = True,
) -> TeacherResult:
    """Stage-1 SFT of MatchLM on ``root``'s train pairs; idempotent and resumable.

    Args:
        root: validated data root (media + ``validated/`` manifests).
        cfg: configuration (``cfg.models.teacher``, ``.tasks``, ``.training``, ``cfg.media``).
        out_dir: teachers root (default ``<work_dir>/rci/teachers``); the model lands in
            ``<out_dir>/<teacher_version>/``.
        seed: model init / sampling seed (default ``cfg.seed``).
        media_dir: decoded-media cache root (default ``<work_dir>/rci/media``).
        progress: show rich progress bars.
        track: log the run (params, per-epoch losses, training.json) to MLflow.
    """
    import torch

    from clipguard.models.matchlm import MatchLMForPairClassification, MatchLMProcessor
    from clipguard.models.tokenizer import resolve_tokenizer_path
    from clipguard.training.media import TeacherPairs, load_or_build_media

    configure_threads(cfg.models.training.torch_threads)
    seed = cfg.seed if seed is None else seed
    teacher_cfg = cfg.models.teacher
    root = Path(root)
    out = Path(out_dir) if out_dir is not None else default_rci_dir(cfg, "teachers")
    data_ver = data_version(root)
    tokenizer_dir = resolve_tokenizer_path(teacher_cfg.tokenizer_path, teacher_cfg.checkpoint_dir)
    version = teacher_version(cfg, data_ver, seed, tokenizer_dir)
    model_dir = out / version
    if (model_dir / TRAINING_FILE).is_file():
        meta = read_training_meta(model_dir)
        if meta.get("complete"):
            log.info("teacher %s already trained: nothing to do", version)
            return _result(model_dir, meta)

    tokenizer = load_teacher_tokenizer(cfg)
    with seeded(seed):
        model = MatchLMForPairClassification.from_settings(teacher_cfg, cfg.models.tasks, tokenizer)
    processor = MatchLMProcessor(tokenizer, model.config)
    media = load_or_build_media(root, cfg, processor, media_clip_ids(root), media_dir or default_rci_dir(cfg, "media"), progress)
    pairs = drop_undecoded(load_pairs(root, (TRAIN_SPLIT,)), media.index.keys(), "teacher training")
    labels = task_labels(pairs, cfg.models.tasks, EditVocabulary.from_corpus(root))
    dataset = TeacherPairs(pairs, media, processor, labels)

    trainable = [p for p in model.parameters() if p.requires_grad]
    n_params = sum(p.numel() for p in model.parameters())
    batch = teacher_cfg.batch_size
    steps = -(-len(dataset) // batch)
    optimizer = torch.optim.AdamW(trainable, lr=teacher_cfg.lr, weight_decay=cfg.models.training.weight_decay)
    scheduler = make_scheduler(optimizer, teacher_cfg.scheduler, steps * teacher_cfg.epochs)

    def batches(epoch: int):
        return epoch_loader(dataset, dataset.rci, batch, cfg.models.training.balance, epoch_seed(seed, epoch), dataset.collate)

    def step(b: dict[str, Any]):
        output = model(**{k: b[k] for k in FORWARD_KEYS}, labels=b["labels"])
        return output.loss, {f"loss_{t}": float(v.detach()) for t, v in output.task_losses.items()}

    lineage = Lineage(data_version=data_ver, model_version=version)
    params = {"rci.seed": seed, "rci.teacher_version": version, "rci.train_pairs": len(pairs), "rci.n_parameters": n_params}
    with tracked_run(track, "rci-train-teacher", cfg, lineage, params, {"clipguard.step": "train-teacher"}) as active:
        history, start = fit(
            name=f"teacher seed {seed}",
            modules={"model": model},
            optimizer=optimizer,
            scheduler=scheduler,
            batches=batches,
            steps_per_epoch=steps,
            step=step,
            epochs=teacher_cfg.epochs,
            seed=seed,
            checkpoint_dir=model_dir / CHECKPOINT_SUBDIR,
            run_key=version,
            grad_clip=cfg.models.training.grad_clip,
            on_log=epoch_logger(active),
            progress=progress,
        )
        seconds = sum(float(r["seconds"]) for r in history)
        model.save_pretrained(model_dir)
        tokenizer.save_pretrained(str(model_dir / TOKENIZER_SUBDIR))
        meta = {
            "kind": "teacher",
            "version": version,
            "complete": True,
            "seed": seed,
            "data_version": data_ver,
            "media_key": media.key,
            "train_pairs": len(pairs),
            "train_positives": int(dataset.rci.sum()),
            "n_parameters": n_params,
            "epochs": teacher_cfg.epochs,
            "train_seconds": seconds,
            "history": history,
            "created_at": pd.Timestamp.now(tz="UTC").isoformat(),
            "config": {
                "teacher": teacher_cfg.model_dump(mode="json"),
                "tasks": dict(cfg.models.tasks),
                "training": cfg.models.training.model_dump(mode="json"),
            },
        }
        write_json(model_dir / TRAINING_FILE, meta)
        if active:
            log_json(meta, "rci/teacher_training.json")
    shutil.rmtree(model_dir / CHECKPOINT_SUBDIR, ignore_errors=True)
    log.info("teacher %s trained in %.1f s", version, seconds)
    return _result(model_dir, meta, epochs_run=teacher_cfg.epochs - start, resumed_from_epoch=start, skipped=False)
