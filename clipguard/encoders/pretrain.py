"""Self-supervised pretraining of the clip encoder: MoCo, or MoCo + CLIP (livestream paper §3.3).

The vision encoder (Swin + 128-d projection head, :mod:`clipguard.encoders.vision`) learns
from the *unlabelled* train-split clips:

* ``moco`` — instance discrimination (He et al., 2020): two copy-style augmented views of a
  clip's frames (:class:`~clipguard.encoders.augment.CopyAugment`), a query encoder and its
  momentum key encoder, a queue of past keys as negatives, InfoNCE.
* ``moco_clip`` — the same plus CLIP losses (Radford et al., 2021) that align each clip's
  visual embedding with its text (frozen MiniLM sentence embedding of title + OCR + ASR)
  and with its audio (frozen Whisper pooled vector), each through a trainable projection
  head to the same 128-d space; ``loss = moco + clip_weight * mean(clip_text, clip_audio)``.

Before the visual epochs, the audio encoder (Whisper) is trained by its own contrastive
recipe on copy-style soundtrack edits (:mod:`clipguard.encoders.audio_pretrain`,
``pretrain.audio_steps``; 0 keeps it as initialised); its pooled vectors are then computed
once for the CLIP term. The text encoder (MiniLM) stays frozen. The decoded frames,
soundtracks and text embeddings come from the decoded-clip cache
(:mod:`clipguard.encoders.cache`), so an epoch only runs Swin. Beside the visual metrics,
``audio_heldout_audio_recall@K`` (and ``audio_init_...`` for the untrained encoder) is copy
retrieval of the audio-decided pairs by pooled audio vector alone.

Evaluation (:func:`copy_retrieval_recall`): copy retrieval on the test split — for each
positive pair whose query is a test clip, rank every other test clip by cosine similarity
of the 128-d embeddings; Recall@K is the share of such pairs whose candidate is in the
top K (ties count against it). The same measure pooled over every split never trained on
(val, test, traffic; each query ranked within its own split) is reported as
``heldout_recall@K``: more queries, less noise. :func:`compare_pretraining` runs both
modes over several seeds next to a randomly initialised (untrained) encoder as the floor.

Artifacts: ``<out_dir>/<encoder_version>/`` (see :mod:`clipguard.encoders.bundle`), where
the version hashes (mode, encoder/pretrain/media config, data version, seed, frozen model
fingerprints). A finished version is never recomputed; an interrupted run resumes from
its last epoch checkpoint (``train/``), bit-for-bit as if it had not stopped.
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import torch
from torch import nn

from clipguard.config import Config
from clipguard.core.io import config_hash, directory_fingerprint, save_tensors, write_json
from clipguard.core.progress import loss_progress
from clipguard.data.schema import data_version
from clipguard.encoders.audio import WHISPER_CHECKPOINT_SUBDIR, AudioEncoder
from clipguard.encoders.audio_pretrain import pretrain_audio
from clipguard.encoders.augment import CopyAugment
from clipguard.encoders.bundle import ENCODER_FILE, EncoderBundle
from clipguard.encoders.cache import ClipCache, load_or_build_cache
from clipguard.encoders.contrastive import MoCo, clip_loss, koleo_loss, warmup_cosine_lr
from clipguard.encoders.heads import ProjectionHead
from clipguard.encoders.imagestream import SceneStream
from clipguard.encoders.inputs import read_accepted
from clipguard.encoders.runtime import configure_threads, seeded
from clipguard.encoders.text import resolve_text_model_path
from clipguard.encoders.vision import SWIN_CHECKPOINT_SUBDIR, VisionEncoder, build_vision_encoder

log = logging.getLogger(__name__)

Mode = Literal["moco", "moco_clip"]
MODES: tuple[str, ...] = ("moco", "moco_clip")
TRAIN_SPLIT = "train"
EVAL_SPLIT = "test"
HELDOUT_SPLITS: tuple[str, ...] = ("val", "test", "traffic")
"""splits never trained on; the secondary (pooled) evaluation ranks within each of them"""
CACHE_SUBDIR = "cache"
COMPARISON_FILE = "pretrain_comparison.json"
PAPER_RECALL_AT_5 = {"moco": 59.31, "moco_clip": 90.53}
"""Table 6 of the livestream paper (percent), for reference next to measured numbers."""

_STATE_DIR = "train"
_STATE_TENSORS = "state.safetensors"
_STATE_JSON = "state.json"
_EMBED_BATCH = 32


@dataclass(frozen=True)
class PretrainResult:
    """Outcome of one pretraining run (or of finding it already done)."""

    encoder_dir: Path
    encoder_version: str
    mode: str
    seed: int
    data_version: str
    train_clips: int
    epochs: int
    epochs_run: int
    """epochs trained by this call (0 when the version was already complete)"""
    resumed_from_epoch: int
    skipped: bool
    losses: list[float]
    """mean training loss per epoch"""
    train_seconds: float
    """training time over all calls that built this version (excluding the cache)"""
    metrics: dict[str, float] = field(default_factory=dict)
    """recall@K on the test split, n_queries, n_gallery"""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["encoder_dir"] = str(self.encoder_dir)
        return d


def _checkpoint_fingerprints(cfg: Config) -> dict[str, str]:
    """Content hashes of the local checkpoints the encoders start from (gpu profile)."""
    out = {"text": directory_fingerprint(str(resolve_text_model_path(cfg.encoders)))}
    if cfg.encoders.checkpoint_dir:
        for sub in (SWIN_CHECKPOINT_SUBDIR, WHISPER_CHECKPOINT_SUBDIR):
            d = Path(cfg.encoders.checkpoint_dir) / sub
            if d.is_dir():
                out[sub] = directory_fingerprint(str(d.resolve()))
    return out


def encoder_version(mode: str, cfg: Config, data_ver: str, seed: int) -> str:
    """``e`` + a 12-hex hash of everything that determines the pretrained weights."""
    pretrain = cfg.pretrain.model_dump(mode="json", exclude={"torch_threads", "eval_ks"})
    return "e" + config_hash(
        {
            "mode": mode,
            "encoders": cfg.encoders.model_dump(mode="json"),
            "pretrain": pretrain,
            "media": cfg.media.model_dump(mode="json"),
            "frozen_init_seed": cfg.seed,
            "data_version": data_ver,
            "seed": seed,
            "checkpoints": _checkpoint_fingerprints(cfg),
        }
    )


# ----------------------------------------------------------------------------- evaluation


@torch.inference_mode()
def embed_clips(vision: VisionEncoder, frames: list[torch.Tensor]) -> torch.Tensor:
    """128-d clip embeddings (N x E) of clips given as uint8 frame stacks, all frames used."""
    vision.eval()
    out = [vision.encode_clips([f.numpy() for f in frames[s : s + _EMBED_BATCH]])[2] for s in range(0, len(frames), _EMBED_BATCH)]
    return torch.cat(out)


def _candidate_ranks(clip_ids: list[str], embeddings: torch.Tensor, pairs: pd.DataFrame) -> tuple[torch.Tensor, list[str], int]:
    """Rank of each positive pair's candidate among the gallery, for queries in the gallery.

    Returns the ranks (1 = most similar), the pairs' ``reason`` (which modality decides
    them; "" when the manifest has none) and how many pairs were left out because their
    candidate is not in the gallery.
    """
    index = {c: i for i, c in enumerate(clip_ids)}
    pos = pairs[pairs["label"] == 1]
    reasons = pos["reason"] if "reason" in pos else pd.Series([""] * len(pos), index=pos.index)
    pairs_in = [(q, c, r) for q, c, r in zip(pos["query_clip_id"], pos["candidate_clip_id"], reasons) if q in index]
    trials = [(index[q], index[c], r) for q, c, r in pairs_in if c in index]
    outside = len(pairs_in) - len(trials)
    if not trials:
        return torch.zeros(0, dtype=torch.long), [], outside
    rows = torch.arange(len(trials))
    q_idx = torch.tensor([t[0] for t in trials])
    c_idx = torch.tensor([t[1] for t in trials])
    sims = embeddings[q_idx] @ embeddings.t()
    sims[rows, q_idx] = float("-inf")  # never retrieve the query itself
    target = sims[rows, c_idx].unsqueeze(1)
    ranks = (sims >= target).sum(dim=1)  # the candidate plus every clip at least as similar
    return ranks, [t[2] for t in trials], outside


def copy_retrieval_recall(
    clip_ids: list[str], embeddings: torch.Tensor, pairs: pd.DataFrame, ks: tuple[int, ...] = (1, 5)
) -> dict[str, float]:
    """Recall@K (percent) of copy retrieval within a gallery.

    ``clip_ids``/``embeddings`` are the gallery (e.g. all test clips, L2-normalised rows).
    Every positive pair (``label == 1``) whose query is in the gallery is one trial: all
    other gallery clips are ranked by cosine similarity to the query, and the trial is a
    hit at K when the candidate's rank is <= K; a clip scoring exactly as high as the
    candidate ranks ahead of it. Pairs whose candidate is not in the gallery are counted
    in ``n_candidate_outside`` and left out.
    """
    ranks, _, outside = _candidate_ranks(clip_ids, embeddings, pairs)
    out = {"n_queries": float(len(ranks)), "n_gallery": float(len(clip_ids)), "n_candidate_outside": float(outside)}
    out.update(_recall(ranks, ks))
    return out


def _recall(ranks: torch.Tensor, ks: tuple[int, ...]) -> dict[str, float]:
    if len(ranks) == 0:
        return {f"recall@{k}": float("nan") for k in ks}
    return {f"recall@{k}": float((ranks <= k).float().mean()) * 100.0 for k in ks}


def _evaluate(vision: VisionEncoder, cache: ClipCache, pairs: pd.DataFrame, ks: tuple[int, ...]) -> dict[str, float]:
    """Recall@K on the test split, plus pooled over every split not trained on (``heldout_*``;
    each query ranked within its own split), overall and by the pairs' deciding modality."""
    if not cache.select(EVAL_SPLIT):
        raise ValueError(f"no decoded clips in the {EVAL_SPLIT!r} split to evaluate on")
    out: dict[str, float] = {}
    pooled: list[torch.Tensor] = []
    reasons: list[str] = []
    for split in HELDOUT_SPLITS:
        idx = cache.select(split)
        if not idx:
            continue
        ids = [cache.clip_ids[i] for i in idx]
        emb = embed_clips(vision, [cache.frames[i] for i in idx])
        if split == EVAL_SPLIT:
            out.update(copy_retrieval_recall(ids, emb, pairs, ks))
        split_ranks, split_reasons, _ = _candidate_ranks(ids, emb, pairs)
        pooled.append(split_ranks)
        reasons.extend(split_reasons)
    ranks = torch.cat(pooled)
    out["heldout_n_queries"] = float(len(ranks))
    out.update({f"heldout_{k}": v for k, v in _recall(ranks, ks).items()})
    for reason in sorted({r for r in reasons if r}):
        sel = torch.tensor([r == reason for r in reasons])
        out[f"heldout_{reason}_n_queries"] = float(sel.sum())
        out.update({f"heldout_{reason}_{k}": v for k, v in _recall(ranks[sel], ks).items()})
    return out


# ----------------------------------------------------------------------------- training


def _sample_views(frames: list[torch.Tensor], idx: list[int], k: int, g: torch.Generator) -> torch.Tensor:
    """``k`` frames per clip (in time order; with repetition when a clip has fewer), B x k x H x W x 3."""
    out = []
    for i in idx:
        t = len(frames[i])
        if t >= k:
            pick = torch.randperm(t, generator=g)[:k].sort().values
        else:
            pick = torch.randint(0, t, (k,), generator=g).sort().values
        out.append(frames[i][pick])
    return torch.stack(out)


class _Trainer:
    """One pretraining run's modules, optimiser and RNG; its state round-trips through a checkpoint."""

    def __init__(
        self,
        vision: VisionEncoder,
        cache: ClipCache,
        train_idx: list[int],
        cfg: Config,
        mode: str,
        seed: int,
        audio_vectors: torch.Tensor | None = None,
    ) -> None:
        p = cfg.pretrain
        self.cfg, self.mode, self.cache, self.train_idx = cfg, mode, cache, train_idx
        self.audio_vectors = cache.audio if audio_vectors is None else audio_vectors
        self.g = torch.Generator().manual_seed(seed)
        self.batch = min(p.batch_size, len(train_idx))
        self.steps_per_epoch = len(train_idx) // self.batch
        self.total_steps = self.steps_per_epoch * p.epochs
        self.warmup = round(p.warmup_epochs * self.steps_per_epoch)
        self.augment = CopyAugment(vision.image_size, p.augment_strength)
        self.scenes = SceneStream(vision.image_size, p.scene_real_share) if p.scenes_per_step else None
        dim = vision.embedding_dim
        with seeded(seed + 1):
            self.moco = MoCo(vision, dim, p.queue_size, p.momentum, p.temperature, generator=self.g)
            self.heads = nn.ModuleDict()
            if mode == "moco_clip":
                self.heads["text"] = ProjectionHead(cache.text.shape[1], dim)
                self.heads["audio"] = ProjectionHead(self.audio_vectors.shape[1], dim)
        params = list(self.moco.query.parameters()) + list(self.heads.parameters())
        self.opt = torch.optim.AdamW(params, lr=p.lr, weight_decay=p.weight_decay)
        self.step = 0

    def run_epoch(self, on_step: Callable[[float], None]) -> float:
        """One pass over the training clips (last partial batch dropped); the mean loss."""
        p = self.cfg.pretrain
        self.moco.train()
        self.heads.train()
        order = torch.randperm(len(self.train_idx), generator=self.g).tolist()
        losses = []
        for s in range(self.steps_per_epoch):
            idx = [self.train_idx[j] for j in order[s * self.batch : (s + 1) * self.batch]]
            x_q = self.augment(_sample_views(self.cache.frames, idx, p.frames_per_view, self.g), self.g)
            x_k = self.augment(_sample_views(self.cache.frames, idx, p.frames_per_view, self.g), self.g)
            if self.scenes is not None:
                still = self.scenes.sample(p.scenes_per_step, p.frames_per_view, self.g)
                x_q = torch.cat([x_q, self.augment(still, self.g)])
                x_k = torch.cat([x_k, self.augment(still, self.g)])
            q = self.moco.query(x_q)
            k = self.moco.encode_keys(x_k)
            loss = self.moco.loss(q, k)
            if p.koleo_weight:
                loss = loss + p.koleo_weight * koleo_loss(q)
            if self.mode == "moco_clip":
                sel = torch.tensor(idx)
                q_clips = q[: len(idx)]
                l_text = clip_loss(q_clips, self.heads["text"](self.cache.text[sel]), p.clip_temperature)
                has_audio = self.cache.has_audio[sel]
                terms = [l_text]
                if int(has_audio.sum()) >= 2:
                    terms.append(clip_loss(q_clips, self.heads["audio"](self.audio_vectors[sel]), p.clip_temperature, has_audio))
                loss = loss + p.clip_weight * torch.stack(terms).mean()
            for group in self.opt.param_groups:
                group["lr"] = warmup_cosine_lr(self.step, self.total_steps, self.warmup, p.lr)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            self.moco.enqueue(k)
            self.step += 1
            losses.append(loss.item())
            on_step(losses[-1])
        return float(sum(losses) / max(1, len(losses)))

    def state_tensors(self) -> dict[str, torch.Tensor]:
        t = {f"moco.{k}": v for k, v in self.moco.state_dict().items()}
        t.update({f"heads.{k}": v for k, v in self.heads.state_dict().items()})
        for pid, st in self.opt.state_dict()["state"].items():
            t.update({f"optim.{pid}.{k}": torch.as_tensor(v) for k, v in st.items()})
        t["rng"] = self.g.get_state()
        return t

    def load_state(self, tensors: dict[str, torch.Tensor], param_groups: list[dict[str, Any]], step: int) -> None:
        self.moco.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("moco.")})
        self.heads.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("heads.")})
        state: dict[int, dict[str, torch.Tensor]] = {}
        for k, v in tensors.items():
            if k.startswith("optim."):
                _, pid, name = k.split(".", 2)
                state.setdefault(int(pid), {})[name] = v
        self.opt.load_state_dict({"state": state, "param_groups": param_groups})
        self.g.set_state(tensors["rng"])
        self.step = step


def _save_state(directory: Path, trainer: _Trainer, info: dict[str, Any]) -> None:
    """Epoch checkpoint: tensors first, then the JSON that commits them."""
    save_tensors(directory / _STATE_TENSORS, trainer.state_tensors())
    groups = [{k: v for k, v in g.items()} for g in trainer.opt.state_dict()["param_groups"]]
    write_json(directory / _STATE_JSON, {**info, "param_groups": groups, "step": trainer.step})


def _load_state(directory: Path, trainer: _Trainer, version: str) -> dict[str, Any] | None:
    from safetensors.torch import load_file

    meta_path = directory / _STATE_JSON
    if not meta_path.is_file():
        return None
    info = json.loads(meta_path.read_text())
    if info.get("version") != version:
        return None
    trainer.load_state(load_file(str(directory / _STATE_TENSORS)), info["param_groups"], int(info["step"]))
    return info


def _result_from_meta(d: Path, meta: dict[str, Any], **override: Any) -> PretrainResult:
    r = meta["result"]
    return PretrainResult(
        encoder_dir=d,
        encoder_version=meta["version"],
        mode=meta["mode"],
        seed=int(meta["seed"]),
        data_version=meta["data_version"],
        train_clips=int(r["train_clips"]),
        epochs=int(r["epochs"]),
        epochs_run=int(override.get("epochs_run", 0)),
        resumed_from_epoch=int(override.get("resumed_from_epoch", r["epochs"])),
        skipped=bool(override.get("skipped", True)),
        losses=list(r["losses"]),
        train_seconds=float(r["train_seconds"]),
        metrics=dict(meta.get("metrics", {})),
    )


_AUDIO_STATE = "audio.safetensors"


def _pretrained_audio(
    initial: AudioEncoder, cache: ClipCache, train_idx: list[int], cfg: Config, seed: int, state_dir: Path, progress: bool
) -> tuple[AudioEncoder, dict[str, Any]]:
    """The audio encoder after ``pretrain.audio_steps`` contrastive steps on the training clips'
    soundtracks (a trained copy; ``initial`` is left as it is), or ``initial`` with 0 steps.
    The trained weights are checkpointed in ``state_dir`` so a resumed run does not train again."""
    from safetensors.torch import load_file

    p = cfg.pretrain
    if not p.audio_steps:
        return initial, {"steps": 0}
    audio = copy.deepcopy(initial)
    audio.encoder.requires_grad_(True)
    audio.encoder.embed_positions.requires_grad_(False)  # fixed sinusoids
    state = state_dir / _AUDIO_STATE
    info_path = state_dir / "audio.json"
    if state.is_file() and info_path.is_file():
        audio.encoder.load_state_dict(load_file(str(state)))
        audio.eval().requires_grad_(False)
        return audio, json.loads(info_path.read_text())
    with loss_progress(progress) as bar:
        task = bar.add_task(f"audio seed {seed}", total=p.audio_steps, loss=float("nan"))
        result = pretrain_audio(
            audio, [cache.waves[i] for i in train_idx], p, seed, lambda loss: bar.update(task, advance=1, loss=loss)
        )
    audio.eval().requires_grad_(False)
    info = {
        "steps": result.steps,
        "clips": result.clips,
        "seconds": result.seconds,
        "first_loss": result.losses[0],
        "last_loss": sum(result.losses[-10:]) / len(result.losses[-10:]),
    }
    save_tensors(state, audio.encoder.state_dict())
    write_json(info_path, info)
    log.info(
        "audio encoder: %d steps on %d clips in %.0f s, loss %.3f -> %.3f",
        result.steps,
        result.clips,
        result.seconds,
        info["first_loss"],
        info["last_loss"],
    )
    return audio, info


def _audio_vectors(audio: AudioEncoder, cache: ClipCache) -> torch.Tensor:
    """Pooled audio vectors (N x D_a, zeros without audio) of every cached clip by ``audio``."""
    out = torch.zeros(len(cache.clip_ids), audio.dim)
    idx = [i for i in range(len(cache.clip_ids)) if bool(cache.has_audio[i]) and len(cache.waves[i])]
    for s in range(0, len(idx), _EMBED_BATCH):
        chunk = idx[s : s + _EMBED_BATCH]
        feats = audio.encode_clips([(cache.waves[i].float() / 32767.0).numpy() for i in chunk], [True] * len(chunk))
        for i, f in zip(chunk, feats):
            out[i] = f.pooled
    return out


def _audio_retrieval(
    cache: ClipCache, vectors: torch.Tensor, pairs: pd.DataFrame, ks: tuple[int, ...], prefix: str
) -> dict[str, float]:
    """Copy retrieval by audio alone (cosine of pooled audio vectors) on the audio-decided pairs
    of every split not trained on, each query ranked within its own split: ``<prefix>heldout_audio_recall@K``."""
    emb = nn.functional.normalize(vectors, dim=-1)
    ranks, reasons = [], []
    for split in HELDOUT_SPLITS:
        idx = cache.select(split)
        if idx:
            r, why, _ = _candidate_ranks([cache.clip_ids[i] for i in idx], emb[idx], pairs)
            ranks.append(r)
            reasons.extend(why)
    if not ranks:
        return {}
    sel = torch.tensor([r == "audio" for r in reasons], dtype=torch.bool)
    audio_ranks = torch.cat(ranks)[sel] if len(sel) else torch.zeros(0, dtype=torch.long)
    out = {f"{prefix}heldout_audio_n_queries": float(len(audio_ranks))}
    if len(audio_ranks):  # no NaN entries: encoder.json metrics compare equal on a re-run
        out.update({f"{prefix}heldout_audio_{k}": v for k, v in _recall(audio_ranks, ks).items()})
    return out


@dataclass
class _Frozen:
    """The frozen encoders and the decoded-clip cache, shared by runs on the same inputs."""

    bundle: EncoderBundle
    cache: ClipCache


def _frozen(root: Path, cfg: Config, out_dir: Path, progress: bool) -> _Frozen:
    bundle = EncoderBundle.from_config(cfg, vision_seed=cfg.seed)
    cache = load_or_build_cache(
        root, cfg, out_dir / CACHE_SUBDIR, (TRAIN_SPLIT, *HELDOUT_SPLITS), bundle.audio, bundle.text, progress
    )
    return _Frozen(bundle, cache)


def _pretrain(
    root: Path, cfg: Config, mode: str, out_dir: Path, seed: int, progress: bool, frozen: _Frozen | None
) -> tuple[PretrainResult, _Frozen | None]:
    from rich.progress import TaskID

    if mode not in MODES:
        raise ValueError(f"unknown pretraining mode {mode!r} (choose from {', '.join(MODES)})")
    data_ver = data_version(root)
    version = encoder_version(mode, cfg, data_ver, seed)
    enc_dir = out_dir / version
    meta_path = enc_dir / ENCODER_FILE
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("complete"):
            log.info("encoder %s already trained: nothing to do", version)
            return _result_from_meta(enc_dir, meta), frozen

    if cfg.media.frame_size is None:
        raise ValueError("pretraining batches frames of many videos: set media.frame_size")
    frozen = frozen or _frozen(root, cfg, out_dir, progress)
    cache = frozen.cache
    train_idx = cache.select(TRAIN_SPLIT)
    if cfg.pretrain.max_clips is not None and len(train_idx) > cfg.pretrain.max_clips:
        pick = torch.randperm(len(train_idx), generator=torch.Generator().manual_seed(seed))[: cfg.pretrain.max_clips]
        train_idx = sorted(train_idx[i] for i in pick.tolist())
    if len(train_idx) < 2:
        raise ValueError(f"pretraining needs at least 2 decoded {TRAIN_SPLIT!r} clips, found {len(train_idx)}")
    if cfg.pretrain.queue_size >= len(train_idx):
        log.warning(
            "queue_size=%d >= %d training clips: the queue holds stale keys of the query's own clip",
            cfg.pretrain.queue_size,
            len(train_idx),
        )

    state_dir = enc_dir / _STATE_DIR
    audio, audio_info = _pretrained_audio(frozen.bundle.audio, cache, train_idx, cfg, seed, state_dir, progress)
    audio_vectors = _audio_vectors(audio, cache) if audio is not frozen.bundle.audio else cache.audio
    with seeded(seed):
        vision = build_vision_encoder(cfg.encoders)
    trainer = _Trainer(vision, cache, train_idx, cfg, mode, seed, audio_vectors)
    info = _load_state(state_dir, trainer, version) or {"epoch": 0, "losses": [], "train_seconds": 0.0}
    start = int(info["epoch"])
    if start:
        log.info("resuming %s from epoch %d", version, start)
    losses: list[float] = list(info["losses"])
    seconds = float(info["train_seconds"])
    epochs = cfg.pretrain.epochs

    with loss_progress(progress) as bar:
        for epoch in range(start, epochs):
            task = bar.add_task(
                f"{mode} seed {seed} epoch {epoch + 1}/{epochs}", total=trainer.steps_per_epoch, loss=float("nan")
            )

            def on_step(loss: float, task: TaskID = task) -> None:
                bar.update(task, advance=1, loss=loss)

            t0 = time.perf_counter()
            mean_loss = trainer.run_epoch(on_step)
            seconds += time.perf_counter() - t0
            losses.append(mean_loss)
            bar.update(task, loss=mean_loss)
            _save_state(
                state_dir,
                trainer,
                {"version": version, "epoch": epoch + 1, "losses": losses, "train_seconds": seconds},
            )

    trained = vision.eval()  # the MoCo query encoder
    pairs = read_accepted(root, "pairs")
    metrics = _evaluate(trained, cache, pairs, cfg.pretrain.eval_ks)
    metrics.update(_audio_retrieval(cache, cache.audio, pairs, cfg.pretrain.eval_ks, "audio_init_"))
    metrics.update(_audio_retrieval(cache, audio_vectors, pairs, cfg.pretrain.eval_ks, "audio_"))
    bundle = EncoderBundle(trained, audio, frozen.bundle.text)
    result_info = {
        "train_clips": len(train_idx),
        "epochs": epochs,
        "losses": losses,
        "train_seconds": seconds + audio_info.get("seconds", 0.0),
        "audio": audio_info,
    }
    meta = {
        "version": version,
        "complete": True,
        "mode": mode,
        "seed": seed,
        "data_version": data_ver,
        "created_at": pd.Timestamp.now(tz="UTC").isoformat(),
        "config": {
            "encoders": cfg.encoders.model_dump(mode="json"),
            "pretrain": cfg.pretrain.model_dump(mode="json"),
            "media": cfg.media.model_dump(mode="json"),
            "frozen_init_seed": cfg.seed,
        },
        "cache_key": cache.key,
        "metrics": metrics,
        "result": result_info,
    }
    bundle.save(enc_dir, meta, heads=trainer.heads.state_dict() or None)
    shutil.rmtree(state_dir, ignore_errors=True)
    log.info(
        "encoder %s: R@1 %.2f R@5 %.2f", version, metrics.get("recall@1", float("nan")), metrics.get("recall@5", float("nan"))
    )
    return (
        _result_from_meta(enc_dir, meta, epochs_run=epochs - start, resumed_from_epoch=start, skipped=False),
        frozen,
    )


def pretrain_encoders(
    root: str | Path,
    cfg: Config,
    mode: Mode = "moco_clip",
    out_dir: str | Path | None = None,
    seed: int | None = None,
    progress: bool = True,
) -> PretrainResult:
    """Pretrain the clip encoder on ``root``'s train split and save it with the frozen encoders.

    ``out_dir`` defaults to ``<cfg.work_dir>/encoders`` and ``seed`` to ``cfg.seed``; the
    encoders land in ``<out_dir>/<encoder_version>/`` (:attr:`PretrainResult.encoder_dir`),
    which :func:`clipguard.features.extract.extract_features` reads. Idempotent and
    resumable (see the module docstring).
    """
    configure_threads(cfg.pretrain.torch_threads)
    out = Path(out_dir) if out_dir is not None else Path(cfg.work_dir) / "encoders"
    result, _ = _pretrain(Path(root), cfg, mode, out, cfg.seed if seed is None else seed, progress, None)
    return result


def _stats(values: list[float]) -> dict[str, Any]:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "values": values,
    }


def compare_pretraining(
    root: str | Path,
    cfg: Config,
    seeds: tuple[int, ...] = (0, 1, 2),
    out_dir: str | Path | None = None,
    out_json: str | Path | None = None,
    modes: tuple[str, ...] = MODES,
    progress: bool = True,
) -> dict[str, Any]:
    """Pretrain every mode with every seed and compare copy-retrieval recall on the test split.

    Also evaluates a randomly initialised, untrained encoder per seed (the floor). Writes
    the comparison (mean, sample std and per-seed values of Recall@K, training seconds,
    the paper's Recall@5 for reference) to ``out_json`` (default
    ``<out_dir>/pretrain_comparison.json``) and returns it. Runs already done are reused.
    """
    configure_threads(cfg.pretrain.torch_threads)
    root = Path(root)
    out = Path(out_dir) if out_dir is not None else Path(cfg.work_dir) / "encoders"
    t_start = time.perf_counter()
    frozen: _Frozen | None = None
    runs: dict[str, list[PretrainResult]] = {m: [] for m in modes}
    for seed in seeds:
        for mode in modes:
            result, frozen = _pretrain(root, cfg, mode, out, seed, progress, frozen)
            runs[mode].append(result)
    frozen = frozen or _frozen(root, cfg, out, progress)
    pairs = read_accepted(root, "pairs")
    floor: list[dict[str, float]] = []
    for seed in seeds:
        with seeded(seed):
            vision = build_vision_encoder(cfg.encoders)
        floor.append(_evaluate(vision.eval(), frozen.cache, pairs, cfg.pretrain.eval_ks))

    summary: dict[str, Any] = {}
    for name, metrics, secs in [("random_init", floor, None)] + [
        (m, [r.metrics for r in rs], [r.train_seconds for r in rs]) for m, rs in runs.items()
    ]:
        entry: dict[str, Any] = {key: _stats([mm[key] for mm in metrics]) for key in metrics[0] if "recall@" in key}
        if secs is not None:
            entry["train_seconds"] = _stats(secs)
            entry["encoder_versions"] = [r.encoder_version for r in runs[name]]
        summary[name] = entry
    first = runs[modes[0]][0] if modes and runs[modes[0]] else None
    report = {
        "data_version": data_version(root),
        "profile": cfg.profile,
        "seeds": list(seeds),
        "eval_split": EVAL_SPLIT,
        "n_queries": floor[0]["n_queries"] if floor else None,
        "n_gallery": floor[0]["n_gallery"] if floor else None,
        "n_candidate_outside": floor[0]["n_candidate_outside"] if floor else None,
        "heldout_splits": list(HELDOUT_SPLITS),
        "heldout_n_queries": {k: v for k, v in floor[0].items() if k.startswith("heldout_") and k.endswith("n_queries")}
        if floor
        else None,
        "train_clips": first.train_clips if first else None,
        "pretrain_config": cfg.pretrain.model_dump(mode="json"),
        "std": "sample standard deviation over seeds",
        "recall_unit": "percent",
        "results": summary,
        "paper_recall@5": PAPER_RECALL_AT_5,
        "wall_seconds": time.perf_counter() - t_start,
    }
    target = Path(out_json) if out_json is not None else out / COMPARISON_FILE
    write_json(target, report)
    report["path"] = str(target)
    return report
