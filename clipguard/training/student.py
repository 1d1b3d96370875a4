"""MatchLite training: stage 1 (supervised) and stage 2 (distillation), §3.4, Appendix D.1.

:func:`train_student` runs both stages on the cached encoder features of the train pairs
(:class:`clipguard.training.data.FeatureBank`, class-balanced batches):

* **Stage 1.** MatchLite from random init (``cfg.models.student``) with the multi-task
  cross-entropy of eq. 1, AdamW and cosine annealing over ``student.epochs`` epochs.
* **Stage 2.** Starting from the stage-1 weights, ``distill.epochs`` more epochs with
  AdamW + cosine at ``distill.lr`` on :class:`clipguard.models.kd.DistillationLoss`
  (``L_class + lambda_emb L_emb + lambda_logits L_logits``, eq. 6) whose teacher inputs are
  the *cached* outputs of the frozen teacher (:mod:`clipguard.training.teacher_cache`):
  MatchLM is never run here. The learnable projection ``P`` of eq. 3 trains with the
  student. ``distill.mode = "off"`` runs the same stage with ``L_class`` alone: the
  no-distillation control, trained exactly as long.

Each stage is its own versioned directory ``<out_dir>/<version>/`` (``config.json`` +
``model.safetensors`` via ``save_pretrained``, and ``training.json``); stage 2's version
includes stage 1's and the teacher cache's. A complete stage is never retrained (the
stored result is returned), an interrupted one resumes from its last epoch checkpoint.
After every epoch the validation pairs are scored (AP, R@P80) and, with ``track``, the
losses and validation metrics go to MLflow.
"""

from __future__ import annotations

import functools
import logging
import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from clipguard.config import Config, MatchLiteArchitecture
from clipguard.core.io import config_hash, write_json
from clipguard.core.metrics import average_precision, recall_at_precision
from clipguard.core.tracking import Lineage, log_json
from clipguard.data.schema import data_version
from clipguard.encoders.runtime import configure_threads, seeded
from clipguard.features.store_format import TokenStore, read_manifest, resolve_features_dir
from clipguard.models.kd import DistillationLoss
from clipguard.models.matchlite import ARCHITECTURE_REVISION, MatchLiteConfig, MatchLiteForPairClassification
from clipguard.training.data import (
    EditVocabulary,
    FeatureBank,
    PairBatch,
    StudentPairs,
    epoch_loader,
    load_pairs,
    task_labels,
)
from clipguard.training.loop import batched, epoch_logger, epoch_seed, fit, make_scheduler, result_run_fields, tracked_run
from clipguard.training.teacher import (
    CHECKPOINT_SUBDIR,
    TRAIN_SPLIT,
    TRAINING_FILE,
    default_rci_dir,
    drop_undecoded,
    read_training_meta,
)
from clipguard.training.teacher_cache import TeacherOutputs, TeacherTargets, load_teacher_outputs

log = logging.getLogger(__name__)

VAL_SPLIT = "val"


@dataclass(frozen=True)
class StudentResult:
    """Outcome of one student stage (the last one :func:`train_student` ran)."""

    model_dir: Path
    version: str
    stage: int
    seed: int
    data_version: str
    features_version: str
    teacher_version: str | None
    distill_mode: str | None
    init_dir: Path | None
    """the stage-1 model stage 2 started from"""
    train_pairs: int
    epochs: int
    epochs_run: int
    resumed_from_epoch: int
    skipped: bool
    train_seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def val_metrics(self) -> dict[str, float]:
        """Validation metrics after the last epoch."""
        return dict(self.history[-1].get("val", {})) if self.history else {}

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["model_dir"] = str(self.model_dir)
        d["init_dir"] = str(self.init_dir) if self.init_dir else None
        return d


def features_version(features_dir: str | Path) -> str:
    """The encoder version the features were extracted with (their version)."""
    return str(read_manifest(features_dir)["encoder_version"])


def load_student(model_dir: str | Path) -> MatchLiteForPairClassification:
    """A trained student directory -> MatchLite in its inference form (eval mode, conv + BatchNorm folded)."""
    return MatchLiteForPairClassification.from_pretrained(model_dir).for_inference()


def student_dataset(
    root: str | Path,
    features_dir: str | Path,
    splits: tuple[str, ...],
    student: MatchLiteArchitecture,
    tasks: Mapping[str, int],
) -> StudentPairs:
    """The pairs of ``splits`` over the cached features a student with these settings reads
    (pairs with a clip that has no features are skipped, with a warning)."""
    pairs = drop_undecoded(load_pairs(root, splits), TokenStore(features_dir).clip_ids, f"student {'/'.join(splits)}")
    clips = sorted(set(pairs["query_clip_id"]) | set(pairs["candidate_clip_id"]))
    bank = FeatureBank.for_student(features_dir, clips, student)
    return StudentPairs(pairs, bank, task_labels(pairs, tasks, EditVocabulary.from_corpus(root)))


@torch.inference_mode()
def score_pairs(model: MatchLiteForPairClassification, dataset: StudentPairs, batch_size: int) -> np.ndarray:
    """P(reproduced) of every pair of ``dataset`` (softmax of the ``rci`` logits), in row order."""
    model.eval()
    out = []
    for chunk in batched(list(range(len(dataset))), batch_size):
        b = dataset.collate(chunk)
        out.append(model(b.query, b.candidate).logits["rci"].softmax(dim=-1)[:, 1])
    return torch.cat(out).numpy().astype(np.float64)


def distillation_step(
    student: MatchLiteForPairClassification, kd: DistillationLoss, batch: PairBatch, targets: TeacherTargets
) -> tuple[torch.Tensor, dict[str, float]]:
    """Stage-2 loss of a batch: eq. 6 on the student's outputs and the cached teacher ``targets``
    (already selected for the batch's rows); returns the loss and its parts."""
    output = student(batch.query, batch.candidate)
    d = kd(output.logits, output.embedding, targets.logits, targets.embedding, batch.labels, targets.mask)
    parts = {
        "class_loss": float(d.class_loss.detach()),
        "emb_loss": float(d.emb_loss.detach()),
        "logits_loss": float(d.logits_loss.detach()),
    }
    parts.update({f"loss_{t}": float(v.detach()) for t, v in d.task_losses.items()})
    return d.loss, parts


@torch.no_grad()
def standardize_projections(model: MatchLiteForPairClassification, bank: FeatureBank, eps: float = 1e-6) -> dict[str, float]:
    """Data-dependent init of the input projections: each sees its modality standardised.

    The frozen encoders' tokens share a large common component (e.g. the pooled audio
    vectors of all clips have cosine ~0.97 to each other), which drowns the differences the
    cosine maps must show. With the per-dimension mean ``mu`` and standard deviation
    ``sigma`` of the training clips' real tokens, ``Linear(x) = W x + b`` becomes
    ``W ((x - mu) / sigma) + b``: the same function class, so the model stays
    self-contained (no input normalisation to replicate at serving time), only a better
    starting point. Returns the mean norm of ``mu`` per modality (for the training log).
    """
    norms = {}
    for modality, projection in model.projections.items():
        linear = next(m for m in projection.modules() if isinstance(m, nn.Linear))
        x, mask = bank.tokens[modality], bank.masks[modality]
        real = x[mask].double()
        if real.shape[0] < 2:
            continue
        mu, sigma = real.mean(dim=0), real.std(dim=0).clamp_min(eps)
        weight = linear.weight.double() / sigma
        linear.weight.copy_(weight.to(linear.weight.dtype))
        linear.bias.copy_((linear.bias.double() - weight @ mu).to(linear.bias.dtype))
        norms[modality] = float(mu.norm())
    return norms


def stage_optimizer(modules: list[nn.Module], lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW over the trainable parameters of ``modules`` (the student, plus ``P`` in stage 2)."""
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


def student_version(
    cfg: Config, stage: int, data_ver: str, feats_ver: str, seed: int, init_version: str | None, teacher: str | None
) -> str:
    """``s`` + a hash of everything that determines a stage's trained weights."""
    spec: dict[str, Any] = {
        "stage": stage,
        "architecture": ARCHITECTURE_REVISION,
        "student": cfg.models.student.model_dump(mode="json"),
        "tasks": dict(cfg.models.tasks),
        "training": cfg.models.training.model_dump(mode="json", exclude={"torch_threads", "eval_batch_size"}),
        "data_version": data_ver,
        "features_version": feats_ver,
        "seed": seed,
    }
    if stage == 2:
        spec.update(init=init_version, teacher=teacher, distill=cfg.models.distill.model_dump(mode="json"))
    return "s" + config_hash(spec)


def _result(model_dir: Path, meta: dict[str, Any], **override: Any) -> StudentResult:
    return StudentResult(
        model_dir=model_dir,
        version=meta["version"],
        stage=int(meta["stage"]),
        seed=int(meta["seed"]),
        data_version=meta["data_version"],
        features_version=meta["features_version"],
        teacher_version=meta.get("teacher_version"),
        distill_mode=meta.get("distill_mode"),
        init_dir=Path(meta["init_dir"]) if meta.get("init_dir") else None,
        train_pairs=int(meta["train_pairs"]),
        **result_run_fields(meta, override),
    )


def _val_metrics(model: MatchLiteForPairClassification, val: StudentPairs | None, batch_size: int) -> dict[str, float]:
    if val is None or len(val) == 0:
        return {}
    scores = score_pairs(model, val, batch_size)
    return {"ap": average_precision(val.rci, scores), "r_at_p80": recall_at_precision(val.rci, scores, 0.8)}


class _Inputs:
    """What both stages of one :func:`train_student` call share; the datasets load on first use
    (a call whose stages are all complete reads no features)."""

    def __init__(self, root: Path, features_dir: Path, cfg: Config) -> None:
        self.root, self.features_dir, self.cfg = root, features_dir, cfg
        self.data_version = data_version(root)
        self.features_version = features_version(features_dir)

    def _split(self, split: str) -> StudentPairs:
        return student_dataset(self.root, self.features_dir, (split,), self.cfg.models.student, self.cfg.models.tasks)

    @functools.cached_property
    def train(self) -> StudentPairs:
        return self._split(TRAIN_SPLIT)

    @functools.cached_property
    def val(self) -> StudentPairs | None:
        try:
            return self._split(VAL_SPLIT)
        except ValueError:  # no validation pairs: no per-epoch validation
            return None


def _run_stage(
    inputs: _Inputs,
    cfg: Config,
    out: Path,
    seed: int,
    stage: int,
    init: StudentResult | None,
    teacher: TeacherOutputs | None,
    progress: bool,
    track: bool,
) -> StudentResult:
    s, dist = cfg.models.student, cfg.models.distill
    init_version = init.version if init else None
    teacher_version = teacher.teacher_version if teacher else None
    version = student_version(cfg, stage, inputs.data_version, inputs.features_version, seed, init_version, teacher_version)
    model_dir = out / version
    if (model_dir / TRAINING_FILE).is_file():
        meta = read_training_meta(model_dir)
        if meta.get("complete"):
            log.info("student %s (stage %d) already trained: nothing to do", version, stage)
            return _result(model_dir, meta)

    train = inputs.train
    if stage == 1:
        with seeded(seed):
            model = MatchLiteForPairClassification(MatchLiteConfig.from_settings(cfg.models))
        standardize_projections(model, train.bank)
        modules: dict[str, nn.Module] = {"model": model}
        lr, epochs, kind = s.lr, s.epochs, s.scheduler
        kd = None
        targets = None
    else:
        assert init is not None
        model = MatchLiteForPairClassification.from_pretrained(init.model_dir)
        teacher_dim = teacher.embedding_dim if teacher else model.config.embedding_dim
        with seeded(seed + 1):
            kd = DistillationLoss.from_settings(dist, teacher_dim, model.config.embedding_dim)
        modules = {"model": model, "distill": kd}
        lr, epochs, kind = dist.lr, dist.epochs, "cosine"
        targets = teacher.align(list(train.pairs["pair_id"])) if teacher else None
        if targets is not None and not bool(targets.mask.all()):
            log.warning("teacher cache lacks %d train pair(s): they get only L_class", int((~targets.mask).sum()))

    batch = s.batch_size
    steps = -(-len(train) // batch)
    optimizer = stage_optimizer(list(modules.values()), lr, cfg.models.training.weight_decay)
    scheduler = make_scheduler(optimizer, kind, steps * epochs)

    def batches(epoch: int):
        epoch_rng = epoch_seed(seed, epoch)
        collate = functools.partial(train.collate, swap_seed=epoch_rng) if cfg.models.training.swap_order else train.collate
        return epoch_loader(train, train.rci, batch, cfg.models.training.balance, epoch_rng, collate)

    def step(b: PairBatch) -> tuple[torch.Tensor, dict[str, float]]:
        if kd is None:
            output = model(b.query, b.candidate, b.labels)
            assert output.loss is not None
            return output.loss, {f"loss_{t}": float(v.detach()) for t, v in output.task_losses.items()}
        if targets is None:  # distill.mode == "off": the same stage with L_class only
            empty = TeacherTargets({}, torch.zeros(len(b.positions), 0), torch.zeros(len(b.positions), dtype=torch.bool))
            return distillation_step(model, kd, b, empty)
        return distillation_step(model, kd, b, targets.select(b.positions))

    eval_batch = cfg.models.training.eval_batch_size
    lineage = Lineage(data_version=inputs.data_version, encoder_version=inputs.features_version, model_version=version)
    params = {
        "rci.stage": stage,
        "rci.seed": seed,
        "rci.student_version": version,
        "rci.teacher_version": teacher_version or "",
        "rci.train_pairs": len(train),
    }
    name = f"student s{stage}" + (f" {dist.mode}" if stage == 2 else "") + f" seed {seed}"
    with tracked_run(
        track, f"rci-train-student-stage{stage}", cfg, lineage, params, {"clipguard.step": "train-student"}
    ) as active:
        history, start = fit(
            name=name,
            modules=modules,
            optimizer=optimizer,
            scheduler=scheduler,
            batches=batches,
            steps_per_epoch=steps,
            step=step,
            epochs=epochs,
            seed=seed,
            checkpoint_dir=model_dir / CHECKPOINT_SUBDIR,
            run_key=version,
            grad_clip=cfg.models.training.grad_clip,
            on_epoch_end=lambda epoch: _val_metrics(model, inputs.val, eval_batch),
            on_log=epoch_logger(active),
            progress=progress,
        )
        model.save_pretrained(model_dir)
        meta = {
            "kind": "student",
            "version": version,
            "complete": True,
            "stage": stage,
            "seed": seed,
            "data_version": inputs.data_version,
            "features_version": inputs.features_version,
            "features_dir": str(inputs.features_dir.resolve()),
            "teacher_version": teacher_version,
            "teacher_cache": str(teacher.path) if teacher else None,
            "distill_mode": dist.mode if stage == 2 else None,
            "init_dir": str(init.model_dir) if init else None,
            "train_pairs": len(train),
            "train_positives": int(train.rci.sum()),
            "n_parameters": sum(p.numel() for p in model.parameters()),
            "epochs": epochs,
            "train_seconds": sum(float(r["seconds"]) for r in history),
            "history": history,
            "created_at": pd.Timestamp.now(tz="UTC").isoformat(),
            "config": {
                "student": s.model_dump(mode="json"),
                "distill": dist.model_dump(mode="json") if stage == 2 else None,
                "tasks": dict(cfg.models.tasks),
                "training": cfg.models.training.model_dump(mode="json"),
            },
        }
        write_json(model_dir / TRAINING_FILE, meta)
        if active:
            log_json(meta, f"rci/student_stage{stage}_training.json")
    shutil.rmtree(model_dir / CHECKPOINT_SUBDIR, ignore_errors=True)
    return _result(model_dir, meta, epochs_run=epochs - start, resumed_from_epoch=start, skipped=False)


def train_student(
    root: str | Path,
    features_dir: str | Path,
    cfg: Config,
    out_dir: str | Path | None = None,
    teacher_cache: str | Path | TeacherOutputs | None = None,
    seed: int | None = None,
    stages: int = 2,
    progress: bool = True,
    track: bool = True,
) -> StudentResult:
    """Train MatchLite: stage 1, then (``stages=2``) stage 2 per ``cfg.models.distill``.

    Args:
        root: validated data root (pair manifests; ``corpus.json`` for the edit task).
        features_dir: extracted features (a version directory or its parent).
        cfg: configuration (``cfg.models.student``, ``.distill``, ``.tasks``, ``.training``).
        out_dir: students root (default ``<work_dir>/rci/students``).
        teacher_cache: a teacher cache directory (or loaded :class:`TeacherOutputs`) holding
            the train pairs; required for stage 2 unless ``distill.mode == "off"``.
        seed: init / sampling seed (default ``cfg.seed``).
        stages: 1 = supervised only; 2 = supervised, then distillation (or its control).
    Returns:
        the result of the last stage run (its ``model_dir`` is the final student).
    """
    if stages not in (1, 2):
        raise ValueError(f"stages must be 1 or 2, got {stages}")
    configure_threads(cfg.models.training.torch_threads)
    seed = cfg.seed if seed is None else seed
    teacher: TeacherOutputs | None = None
    if stages == 2 and cfg.models.distill.mode != "off":
        if teacher_cache is None:
            raise ValueError(
                f"distill.mode={cfg.models.distill.mode!r} needs the teacher's cached outputs: pass teacher_cache "
                "(clipguard rci cache-teacher) or set models.distill.mode=off"
            )
        teacher = teacher_cache if isinstance(teacher_cache, TeacherOutputs) else load_teacher_outputs(teacher_cache)
    root, features = Path(root), resolve_features_dir(features_dir)
    if teacher is not None and teacher.data_version != data_version(root):
        raise ValueError(
            f"the teacher cache {teacher.path} was computed on data version {teacher.data_version}, "
            f"not {data_version(root)}: cache the teacher on this data root"
        )
    out = Path(out_dir) if out_dir is not None else default_rci_dir(cfg, "students")
    inputs = _Inputs(root, features, cfg)
    stage1 = _run_stage(inputs, cfg, out, seed, 1, None, None, progress, track)
    if stages == 1:
        return stage1
    return _run_stage(inputs, cfg, out, seed, 2, stage1, teacher, progress, track)
