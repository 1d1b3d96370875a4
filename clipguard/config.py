"""Typed configuration with profiles.

One pydantic model, :class:`Config`, loaded from ``clipguard/configs/<profile>.yaml`` (``local`` by
default, ``gpu`` for paper-scale sizes). A profile file may ``extends:`` another one, or a
list of them (merged in order: ``extends: [gpu, k8s-services]``); later values override
earlier ones, and ``overrides`` (dotted keys, e.g. from CLI flags) win over both. Every step of the pipeline reads its parameters from here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

CONFIG_DIR = Path(os.environ.get("CLIPGUARD_CONFIG_DIR", Path(__file__).resolve().parent / "configs"))
"""The profiles (``clipguard/configs/<profile>.yaml``, package data); ``$CLIPGUARD_CONFIG_DIR`` replaces them."""
DEFAULT_PROFILE = os.environ.get("CLIPGUARD_PROFILE", "local")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MediaConfig(_Section):
    """How media are decoded and cut into clips."""

    fps: float = Field(1.0, gt=0, description="frames sampled per second of video")
    sample_rate: int = Field(16_000, gt=0, description="audio sample rate (Hz), mono")
    frame_size: int | None = Field(224, gt=0, description="decoded frames are resized to frame_size x frame_size (None: native)")
    clip_seconds: float = Field(20.0, gt=0, description="clip length, as in the livestream paper")
    clip_overlap_seconds: float = Field(0.0, ge=0)
    min_clip_seconds: float = Field(1.0, gt=0, description="a trailing window shorter than this is merged/dropped by the clipper")
    decode_timeout_s: float | None = Field(
        60.0,
        gt=0,
        description="time limit of one decode call (a probe, or one clip window): a file that decodes forever or very "
        "slowly is quarantined as decode_timeout instead of hanging the batch (None: no limit)",
    )

    @model_validator(mode="after")
    def _overlap_lt_clip(self) -> "MediaConfig":
        if self.clip_overlap_seconds >= self.clip_seconds:
            raise ValueError("clip_overlap_seconds must be smaller than clip_seconds")
        return self


class PolicyConfig(_Section):
    """The policy taxonomy clips are labelled with (multi-label)."""

    policies: tuple[str, ...] = (
        "weapons",
        "graphic_violence",
        "hate_speech",
        "scam",
        "dangerous_acts",
    )


class ValidationConfig(_Section):
    """Bounds and choices of the data contract (see clipguard.data.validate)."""

    min_duration_s: float = Field(0.5, ge=0)
    max_duration_s: float = Field(4 * 3600.0, gt=0)
    max_file_bytes: int = Field(2 * 1024**3, gt=0, description="larger uploads are quarantined")
    max_title_chars: int = 512
    max_ocr_chars: int = 4096
    max_asr_chars: int = 20_000
    min_timestamp: str = "2000-01-01T00:00:00Z"
    max_timestamp: str = "2100-01-01T00:00:00Z"
    # Whether a decodable file without an audio track, or with a variable frame rate, is
    # accepted with a flag (the reader handles both) or quarantined.
    no_audio: Literal["flag", "quarantine"] = "flag"
    variable_frame_rate: Literal["flag", "quarantine"] = "flag"
    probe_workers: int = Field(2, ge=1)


class SynthConfig(_Section):
    """Defaults of the synthetic corpus generator (clipguard.synth)."""

    clips: int = Field(480, ge=40, description="base short videos (before copies)")
    days: int = Field(8, ge=2)
    trend_day: int = Field(6, ge=1, description="0-based day on which the new trend starts")
    start_date: str = "2026-11-01"
    width: int = 160
    height: int = 120
    video_fps: float = 10.0
    min_seconds: float = 4.0
    max_seconds: float = 10.0
    streams: int = Field(4, ge=0, description="long livestream recordings cut into 20-s clips")
    stream_seconds: float = 64.0
    violation_rate: float = Field(0.05, ge=0, le=1)
    lookalike_rate: float = Field(0.06, ge=0, le=1, description="benign hard negatives")
    pairs_per_clip: float = Field(3.0, gt=0)
    positive_rate: float = Field(
        0.25,
        gt=0,
        lt=1,
        description="RCI positives among pairs (0.25: ~190 train / 35 test positives at the default size; "
        "at 0.05 the student saw 34 and the test split 11)",
    )
    trend_rate: float = Field(0.3, ge=0, le=1, description="share of trend-day clips showing the trend")
    min_test_copies: int = Field(
        150,
        ge=0,
        description="extra copy pairs (and negatives at positive_rate) on test-split clips until the test "
        "split has this many copies, at most 3 more per test clip: a test split where one pair moves AP by "
        "points cannot tell models apart",
    )
    workers: int = Field(2, ge=1)

    @model_validator(mode="after")
    def _trend_in_range(self) -> "SynthConfig":
        if not 0 < self.trend_day < self.days:
            raise ValueError(f"trend_day must be in 1..days-1 (days={self.days}, got {self.trend_day})")
        return self


class EncoderConfig(_Section):
    """Frozen-encoder sizes (used by the feature pipeline)."""

    vision_image_size: int = 64
    vision_embed_dim: int = 32
    vision_depths: tuple[int, ...] = (1, 1)
    vision_heads: tuple[int, ...] = (2, 4)
    vision_region_grid: int = Field(
        2,
        ge=0,
        description="a frame token is Swin's pooled vector plus its last map pooled over a g x g grid "
        "(layout, not only colour and texture); Dv = width * (1 + g*g); 0: the pooled vector alone",
    )
    audio_d_model: int = 64
    audio_layers: int = 2
    audio_heads: int = 4
    audio_mel_bins: int = 80
    text_model_path: str | None = Field(None, description="sentence-transformers directory; None = the bundled all-MiniLM-L6-v2")
    embedding_dim: int = 128
    checkpoint_dir: str | None = Field(None, description="gpu profile: local checkpoint directory")


class PretrainConfig(_Section):
    """Self-supervised encoder pretraining (clipguard.encoders.pretrain): MoCo, MoCo + CLIP."""

    epochs: int = Field(
        40, ge=1, description="passes over the train clips (4 epochs of ~7 steps learned nothing beyond a random init)"
    )
    batch_size: int = Field(32, ge=2, description="clips per step (the last partial batch is dropped)")
    lr: float = Field(2e-3, gt=0, description="AdamW peak learning rate (warm-up, then cosine decay)")
    weight_decay: float = Field(0.05, ge=0)
    warmup_epochs: float = Field(1.0, ge=0)
    queue_size: int = Field(256, ge=1, description="MoCo negatives; keep it below the number of training clips")
    momentum: float = Field(
        0.95, ge=0, lt=1, description="key-encoder EMA momentum (a few hundred steps: 0.99 leaves the keys behind)"
    )
    temperature: float = Field(0.1, gt=0, description="MoCo InfoNCE temperature")
    clip_temperature: float = Field(0.1, gt=0, description="CLIP loss temperature")
    clip_weight: float = Field(1.0, ge=0, description="weight of the CLIP terms in moco_clip")
    frames_per_view: int = Field(1, ge=1, description="frames sampled from a clip for one view")
    scenes_per_step: int = Field(
        32,
        ge=0,
        description="fresh synthetic scenes (real-media crops / procedural textures + random shapes and text; "
        "clipguard.encoders.imagestream) added to every MoCo batch: instances to tell apart beyond the corpus",
    )
    scene_real_share: float = Field(0.5, ge=0, le=1, description="share of scenes on a real image or video frame")
    koleo_weight: float = Field(0.0, ge=0, description="weight of the KoLeo entropy regulariser (SSCD)")
    augment_strength: float = Field(1.0, ge=0, le=2, description="scales augmentation ranges/probabilities")
    max_clips: int | None = Field(None, ge=2, description="cap on training clips (None = all)")
    audio_steps: int = Field(
        300,
        ge=0,
        description="contrastive steps of the audio encoder on soundtrack edits "
        "(clipguard.encoders.audio_pretrain; 0 = keep it as initialised)",
    )
    audio_batch_size: int = Field(32, ge=2, description="clips per audio step (2 views each)")
    audio_lr: float = Field(3e-3, gt=0, description="AdamW peak learning rate of the audio encoder")
    audio_window_seconds: int = Field(4, ge=1, description="longest audio training view (s)")
    audio_temperature: float = Field(0.1, gt=0, description="audio InfoNCE temperature")
    eval_ks: tuple[int, ...] = (1, 5)
    torch_threads: int | None = Field(None, ge=1, description="None = the CPUs this process may use")


class FeaturesConfig(_Section):
    """Frozen-encoder feature extraction (clipguard.features.extract)."""

    batch_size: int = Field(16, ge=1, description="clips encoded together")
    shard_clips: int = Field(128, ge=1, description="clips per array shard (the unit of resume)")
    text_max_tokens: int = Field(64, ge=2, description="text tokens stored per clip (the paper: 64)")
    audio_tokens_per_second: float = Field(1.0, gt=0, description="Whisper states are pooled to this rate")
    prefetch: int = Field(1, ge=0, description="batches decoded ahead in a background thread")
    torch_threads: int | None = Field(None, ge=1, description="None = the CPUs this process may use")
    extract_shards: int = Field(
        1,
        ge=1,
        description="the pipelines' extraction step runs as this many ParallelFor tasks over disjoint clip subsets, "
        "merged into one feature version",
    )


class FeastConfig(_Section):
    """The Feast feature store (clipguard.features.store, feature_repo/).

    Locally the registry and the online store are SQLite files under
    ``<work_dir>/<dir>``; on the cluster set ``online_store: redis`` and a SQL
    ``registry_url`` (PostgreSQL). Each encoder version is its own Feast project.
    """

    dir: str = Field("feast", description="registry/online store directory, relative to work_dir")
    registry_file: str = Field("registry.db", description="SQLite registry file (when registry_url is None)")
    registry_url: str | None = Field(
        None, description="SQLAlchemy URL of a SQL registry, e.g. postgresql+psycopg://user@host/feast"
    )
    registry_cache_ttl_seconds: int = Field(60, ge=0, description="how long readers cache the registry (0 = forever)")
    online_store: Literal["sqlite", "redis"] = "sqlite"
    online_store_file: str = Field("online_store.db", description="SQLite online store file")
    redis_connection_string: str = Field("localhost:6379", description="host:port[,db=0,password=...]")
    ttl_days: float = Field(
        365.0,
        gt=0,
        description="feature view TTL: a label joins features stamped at most this long before it",
    )


class DriftConfig(_Section):
    """Data-drift watch (clipguard.monitoring.drift): Evidently ``DataDriftPreset`` on numeric features.

    Each clip becomes a few numeric columns (PCA components of its embeddings plus the PCA
    residual, text/audio statistics, words new to the reference, the student's score). A
    column drifts when its normed Wasserstein distance (an effect size in reference
    standard deviations: it does not grow with the number of clips, unlike a p-value)
    reaches ``stattest_threshold``; columns with at most ``discrete_max_values`` distinct
    reference values (flags, near-constant counts) use PSI instead, because a distance
    normed by a tiny spread explodes. A day drifts when the share of drifted columns
    reaches ``drift_share``. The defaults were measured on the generated corpus's traffic
    days (seeds 0-2): the module docstring of clipguard.monitoring.drift explains them.
    """

    projection_dims: int = Field(4, ge=1, description="PCA components kept per embedding column")
    groups: tuple[Literal["visual", "text_embedding", "text_stats", "text_novelty", "audio", "score"], ...] = (
        "visual",
        "text_embedding",
        "text_stats",
        "text_novelty",
        "audio",
        "score",
    )
    drift_share: float = Field(
        0.1, gt=0, le=1, description="share of drifted columns that raises drift (2 of the corpus's 18 columns)"
    )
    stattest: str = Field("wasserstein", description="Evidently stat test for continuous columns")
    stattest_threshold: float = Field(
        0.5, gt=0, description="threshold of `stattest` (0.5: a medium effect, above day-to-day noise of ~100 clips)"
    )
    discrete_stattest: str = Field("psi", description="stat test for flag / near-constant columns")
    discrete_threshold: float = Field(
        0.25, gt=0, description="threshold of `discrete_stattest` (PSI 0.25: the conventional 'significant shift')"
    )
    discrete_max_values: int = Field(2, ge=1, description="columns with at most this many distinct reference values are discrete")
    per_column_stattest: dict[str, str] = Field(
        default_factory=dict,
        description="column -> stat test override; set its threshold in per_column_threshold too",
    )
    per_column_threshold: dict[str, float] = Field(default_factory=dict, description="column -> threshold override")
    min_current_rows: int = Field(50, ge=1, description="periods with fewer clips are not evaluated")
    reference_splits: tuple[str, ...] = Field(
        ("train",), min_length=1, description="manifest splits the training reference is made of"
    )


class AlertConfig(_Section):
    """Alert delivery (clipguard.monitoring.alerts).

    ``alertmanager_url``: a Prometheus Alertmanager, which gets the alerts through its API
    (``POST /api/v2/alerts``) and routes, groups, silences and resolves them;
    ``webhook_url``: a receiver of Alertmanager's webhook JSON (an on-call bridge) when no
    Alertmanager runs. At most one of them; neither: alerts are only logged. Delivery
    retries connection errors, timeouts, 429 and 5xx with exponential backoff and jitter;
    the whole delivery never takes longer than ``max_total_s`` and never raises.
    """

    alertmanager_url: str | None = Field(
        None, description="Alertmanager base URL (e.g. http://alertmanager:9093); alerts go to its /api/v2/alerts"
    )
    webhook_url: str | None = Field(None, description="webhook receiver URL; None = alerts are only logged")
    timeout_s: float = Field(5.0, gt=0, description="per-attempt connect/read timeout")
    retries: int = Field(3, ge=0, description="retries after the first attempt")
    backoff_base_s: float = Field(0.5, ge=0, description="first backoff; doubles per retry")
    backoff_max_s: float = Field(8.0, ge=0, description="cap of one backoff")
    max_total_s: float = Field(30.0, gt=0, description="bound on the whole delivery, all attempts included")
    receiver: str = Field("clipguard", description="Alertmanager receiver name in the payload")
    severity: str = "warning"
    external_url: str = Field("", description="externalURL of the payload (e.g. the pipeline UI)")
    labels: dict[str, str] = Field(default_factory=dict, description="extra labels on every alert (team, env)")

    @model_validator(mode="after")
    def _one_target(self) -> "AlertConfig":
        if self.alertmanager_url and self.webhook_url:
            raise ValueError(
                "set alerts.alertmanager_url or alerts.webhook_url, not both "
                "(an Alertmanager forwards to webhook receivers itself)"
            )
        return self


class RegistryConfig(_Section):
    """MLflow tracking and the model registry (clipguard.registry).

    Locally runs and registered models live in ``<work_dir>/mlflow.db`` (SQLite) and
    artifacts under ``<work_dir>/mlartifacts``; on a cluster set ``tracking_uri`` (or the
    ``MLFLOW_TRACKING_URI`` environment variable) to the MLflow server.
    """

    tracking_uri: str | None = Field(None, description="None: $MLFLOW_TRACKING_URI if set, else sqlite:///<work_dir>/mlflow.db")
    artifact_location: str | None = Field(
        None, description="new experiments' artifact root; None: <work_dir>/mlartifacts (server default for http)"
    )
    experiment: str = Field("clipguard", description="MLflow experiment of clipguard runs")
    http_retries: int = Field(
        3, ge=0, description="retries of a request to an MLflow tracking server (MLflow's own default is 7, ~4 minutes)"
    )
    http_backoff_factor: int = Field(1, ge=0, description="exponential backoff between those retries (s: 1, 2, 4, ...)")
    http_timeout_s: float = Field(30.0, gt=0, description="time-out of one request to the tracking server")
    models: dict[str, str] = Field(
        default_factory=lambda: {
            "teacher": "clipguard-teacher",
            "student": "clipguard-student",
            "encoder": "clipguard-encoder",
            "index": "clipguard-index",
        },
        description="model family -> registered model name",
    )
    policy_path: str | None = Field(
        None,
        description="promotion gates: a YAML file (a relative path is read from the current directory); "
        "None: the policy that ships with the package (clipguard/registry/policy.yaml)",
    )


class TeacherConfig(_Section):
    """MatchLM, the teacher (clipguard.models.matchlm): MatchLM2Lite §3.2, Appendix A.2 and D.2.

    LLaVA-OneVision (SigLIP vision tower + Qwen2 language model) with a Whisper audio branch.
    ``local`` builds a tiny model from these sizes (random init); ``gpu`` sets the
    LLaVA-OV-0.5B sizes and loads the weights from ``checkpoint_dir`` (Hugging Face format)
    and ``audio_checkpoint_dir`` (a Whisper checkpoint) when they are set.
    """

    vision_image_size: int = Field(64, gt=0, description="SigLIP input size (px)")
    vision_patch_size: int = Field(16, gt=0)
    vision_hidden_size: int = Field(64, gt=0)
    vision_intermediate_size: int = Field(128, gt=0)
    vision_layers: int = Field(2, ge=1)
    vision_heads: int = Field(2, ge=1)
    text_hidden_size: int = Field(64, gt=0, description="Qwen2 hidden size")
    text_intermediate_size: int = Field(128, gt=0)
    text_layers: int = Field(2, ge=1)
    text_heads: int = Field(4, ge=1)
    text_kv_heads: int = Field(2, ge=1)
    text_vocab_size: int | None = Field(None, ge=1, description="Qwen2 vocabulary (None: the tokenizer's size; 151936 for Qwen2)")
    text_max_positions: int = Field(8192, ge=64)
    audio_d_model: int = Field(64, gt=0, description="Whisper encoder width")
    audio_layers: int = Field(2, ge=1)
    audio_heads: int = Field(4, ge=1)
    audio_ffn_dim: int = Field(256, gt=0)
    audio_mel_bins: int = Field(80, gt=0)
    audio_window_seconds: int = Field(20, ge=1, description="audio per video seen by Whisper (paper: 30 s)")
    frame_budget: int = Field(16, ge=2, description="frames of both videos of a pair together (A.2)")
    min_frames: int = Field(4, ge=1, description="frames guaranteed to the shorter video (A.2)")
    prompt: str = Field(
        "Is the second video reproduced content of the first video?",
        description="task prompt that starts the interleaved input (§3.2)",
    )
    max_text_tokens: int = Field(32, ge=0, description="tokens of each video's own text in the prompt")
    head_hidden_size: int = Field(64, gt=0, description="shared projection of the multi-task head")
    head_dropout: float = Field(0.1, ge=0, lt=1)
    finetune: Literal["lora", "full"] = Field(
        "full", description="lora: adapters + heads + projectors only (D.2); full: every weight"
    )
    lora_r: int = Field(32, ge=1)
    lora_alpha: int = Field(64, ge=1)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    lora_target_modules: tuple[str, ...] = (
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    )
    checkpoint_dir: str | None = Field(None, description="LLaVA-OneVision checkpoint directory (gpu)")
    audio_checkpoint_dir: str | None = Field(None, description="Whisper checkpoint directory (gpu)")
    tokenizer_path: str | None = Field(None, description="tokenizer directory; None: checkpoint_dir if it has one, else MiniLM's")
    lr: float = Field(1e-3, gt=0, description="AdamW learning rate (paper: 2e-5, linear decay)")
    epochs: int = Field(8, ge=1)
    batch_size: int = Field(4, ge=1, description="pairs per step (paper: 1 per GPU x 48)")
    scheduler: Literal["linear", "cosine"] = "linear"

    @model_validator(mode="after")
    def _frames_fit(self) -> "TeacherConfig":
        if 2 * self.min_frames > self.frame_budget:
            raise ValueError("frame_budget must hold min_frames for both videos")
        return self


class MatchLiteArchitecture(_Section):
    """The architecture of MatchLite, the student (clipguard.models.matchlite): MatchLM2Lite §3.3,
    Algorithm 1, A.1, D.1. Defined once: :class:`StudentConfig` adds how it is trained, and
    ``clipguard.models.matchlite.MatchLiteConfig`` (saved with every model) adds its task set.

    It reads the frozen encoders' cached token features (``visual_dim``/``audio_dim`` follow
    ``cfg.encoders``, ``text_dim`` the MiniLM text encoder). Every query x candidate map is
    laid on a fixed canvas (``max_*_tokens`` per modality) and pooled to ``grid_size`` before
    the ResNet-34 decision module; longer inputs must be subsampled by the data loader.
    """

    modalities: Literal["v", "va", "vt", "vat"] = Field(
        "vat", description="v: visual only; va/vt: + audio/text; vat: all (Table 2 ablation)"
    )
    visual_dim: int = Field(
        320, gt=0, description="Dv: Swin frame-token size, width * (1 + region_grid**2) (local 64 * 5, Swin-T 768 * 5)"
    )
    audio_dim: int = Field(64, gt=0, description="Da: Whisper width (local 64, Whisper-small 768)")
    text_dim: int = Field(384, gt=0, description="Dt: MiniLM token size")
    max_visual_tokens: int = Field(24, ge=1, description="frames per clip (1 fps)")
    max_audio_tokens: int = Field(24, ge=1, description="audio tokens per clip (1 per second)")
    max_text_tokens: int = Field(64, ge=1, description="text tokens per clip (A.1: 64)")
    hidden_size: int = Field(32, gt=0, description="common width d of the projections and BiXT (A.1: 64)")
    bixt_heads: int = Field(8, ge=1)
    bixt_layers: int = Field(1, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)
    conv_channels: int = Field(8, ge=1, description="channels of each enhanced visual map E^m")
    grid_size: int = Field(16, ge=4, description="side of the map grid fed to the ResNet")
    match_features: bool = Field(
        True,
        description="the head also reads, per view, the best-match statistics of the cosine map at native size "
        "(clipguard.models.matchlite.match_statistics); False: the pooled maps alone, as in the paper",
    )
    resample_time: bool = Field(
        True,
        description="resample every clip's visual and audio tokens to exactly max_*_tokens, so that the "
        "token count (the clip's duration) carries no signal; False: keep short clips short (zero padding)",
    )
    resnet_widths: tuple[int, int, int, int] = (16, 32, 64, 128)
    head_hidden_size: int = Field(64, gt=0)
    head_dropout: float = Field(0.1, ge=0, lt=1)

    @model_validator(mode="after")
    def _heads_divide(self) -> "MatchLiteArchitecture":
        if self.hidden_size % self.bixt_heads:
            raise ValueError("hidden_size must be a multiple of bixt_heads")
        return self


class StudentConfig(MatchLiteArchitecture):
    """The student's architecture (:class:`MatchLiteArchitecture`) and how stage 1 trains it."""

    lr: float = Field(1e-3, gt=0, description="AdamW learning rate (paper: 1e-4, cosine annealing)")
    epochs: int = Field(16, ge=1, description="stage-1 epochs (val AP still rose from 8 to 16 on the default corpus)")
    batch_size: int = Field(16, ge=1, description="pairs per step (paper: 16 per GPU)")
    scheduler: Literal["linear", "cosine"] = "cosine"


class DistillConfig(_Section):
    """Stage-2 knowledge distillation (clipguard.models.kd): MatchLM2Lite §3.4.2, eq. 3-6, B.3.

    ``L = L_class + lambda_emb * L_emb + lambda_logits * L_logits`` (eq. 6 with both weights
    = lambda = 1.5); ``mode`` switches terms off for the Table 5/6 ablation.
    """

    mode: Literal["both", "logits", "embeddings", "off"] = "both"
    lambda_emb: float = Field(1.5, ge=0)
    lambda_logits: float = Field(1.5, ge=0)
    temperature: float = Field(2.0, gt=0, description="softmax temperature T of eq. 4 (not given in the paper)")
    logit_tasks: tuple[str, ...] = Field(("rci",), description="tasks whose logits are distilled")
    epochs: int = Field(4, ge=1, description="stage-2 epochs, starting from the stage-1 student")
    lr: float = Field(5e-4, gt=0, description="stage-2 AdamW learning rate (cosine annealing)")


class RCITrainingConfig(_Section):
    """How the RCI models are trained (clipguard.training), beyond the per-model settings.

    RCI positives are rare (~5% of pairs): with ``balance="sampler"`` every epoch draws as
    many pairs as the training split holds, with replacement, each class with probability
    1/2 (a class-balanced sampler); ``"none"`` shuffles the pairs as they are.
    """

    balance: Literal["sampler", "none"] = Field("sampler", description="class-balanced sampling of training pairs")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay of teacher and student")
    grad_clip: float | None = Field(1.0, gt=0, description="max gradient norm (None: no clipping)")
    swap_order: bool = Field(
        True,
        description="swap query and candidate in a random half of each training batch: serving puts the new "
        "upload first, training data the original, so the student must not depend on the order",
    )
    eval_batch_size: int = Field(64, ge=1, description="pairs per batch when scoring")
    torch_threads: int | None = Field(None, ge=1, description="None = the CPUs this process may use")


class StudentSpeedConfig(_Section):
    """How the student's scoring speed from cached features is measured (clipguard.eval.speed).

    ``evaluate_student`` adds ``pairs_per_s`` and ``p99_ms`` to its metrics (the student gate
    of ``clipguard/registry/policy.yaml`` requires them); TARGETS.md: >= 500 pairs/s on 2 cores
    and >= 30% of the same-run fp32 matmul peak.
    """

    enabled: bool = Field(True, description="measure in evaluate_student (the student gate needs pairs_per_s, p99_ms)")
    torch_threads: int = Field(2, ge=1, description="intra-op threads for pairs_per_s (TARGETS: 2 cores)")
    latency_threads: int | None = Field(
        None,
        ge=1,
        description="intra-op threads for p50/p99_ms of one request; None: the service's "
        "(serving.torch_threads, else the CPUs minus one for its event loop)",
    )
    batch_size: int | None = Field(None, ge=1, description="pairs per forward pass; None: training.eval_batch_size")
    pairs: int = Field(512, ge=1, description="pairs scored for pairs_per_s (the split's pairs, cycled)")
    requests: int = Field(200, ge=1, description="single-pair requests timed for p50_ms / p99_ms")
    warmup: int = Field(3, ge=0, description="untimed forward passes before each measurement")
    matmul_size: int = Field(1024, ge=16, description="n of the n x n fp32 matmul whose rate is the peak")
    matmul_repeats: int = Field(10, ge=1, description="timed matmuls (the peak is the fastest)")
    max_seconds: float = Field(
        5.0,
        gt=0,
        description="budget of each timed loop (throughput per batch size, latency); "
        "past it the loop stops early, after at least one batch / 10 requests (a loaded machine)",
    )


class ModelsConfig(_Section):
    """The RCI models: teacher, student, distillation, and their shared task set (eq. 1)."""

    tasks: dict[str, int] = Field(
        default_factory=lambda: {"rci": 2, "reason": 4, "edit": 11},
        description="task -> classes; 'rci' is the main task; reason: visual/audio/text/none; "
        "edit: none + the 10 train edit families",
    )
    teacher: TeacherConfig = TeacherConfig()
    student: StudentConfig = StudentConfig()
    distill: DistillConfig = DistillConfig()
    training: RCITrainingConfig = RCITrainingConfig()
    speed: StudentSpeedConfig = StudentSpeedConfig()

    @model_validator(mode="after")
    def _main_task(self) -> "ModelsConfig":
        if self.tasks.get("rci") != 2:
            raise ValueError("tasks must contain the main task 'rci' with 2 classes")
        if any(n < 2 for n in self.tasks.values()):
            raise ValueError("every task needs at least 2 classes")
        unknown = set(self.distill.logit_tasks) - set(self.tasks)
        if unknown:
            raise ValueError(f"distill.logit_tasks not in tasks: {sorted(unknown)}")
        return self


IndexKind = Literal["hnsw", "ivfpq"]


class IndexParamsConfig(_Section):
    """How a FAISS index is built, and its default search settings: the one schema of these
    parameters (:class:`clipguard.index.IndexParams` adds the index's own methods to it).

    ``hnsw`` (default): ``IndexHNSWFlat`` (inner product = cosine), about 0.8 KB/vector;
    ``ivfpq``: an inverted file with product-quantised codes (``pq_m`` bytes + an 8-byte
    id per vector) for 100M+ collections. A collection is cut into shards of
    ``shard_size`` vectors, one FAISS index each, searched together and merged.
    """

    kind: IndexKind = "hnsw"
    hnsw_m: int = Field(32, ge=4, description="HNSW neighbours per node (M)")
    ef_construction: int = Field(
        200, ge=8, description="HNSW build-time beam width (80 builds 2.4x faster but needs efSearch ~64 for recall 0.98)"
    )
    ef_search: int = Field(32, ge=1, description="HNSW search-time beam width (>= k is useful)")
    ivf_nlist: int = Field(1024, ge=1, description="IVF lists per shard (capped at train vectors / 39 for small shards)")
    pq_m: int = Field(32, ge=1, description="PQ sub-quantisers: bytes per code at 8 bits; must divide the dimension")
    pq_nbits: int = Field(8, ge=4, le=12)
    opq: bool = Field(False, description="learn an OPQ rotation before PQ (same code size, much longer training)")
    nprobe: int = Field(64, ge=1, description="IVF lists visited per query")
    refine: Literal["none", "sqfp16", "flat"] = Field(
        "none",
        description="IVF-PQ: keep each vector beside its code (FAISS IndexRefine: sqfp16 2 bytes, flat 4 bytes per "
        "dimension) and re-score the PQ candidates with it; the copies are memory-mapped on load, so they stay on "
        "disk and only the pages of re-scored candidates are read",
    )
    refine_k_factor: float = Field(
        4.0, ge=1, description="IVF-PQ with refine: PQ candidates re-scored per wanted neighbour (k x this)"
    )
    train_size: int = Field(100_000, ge=1_000, description="IVF-PQ training vectors (sampled from the first shard)")
    shard_size: int = Field(1_000_000, ge=1, description="vectors per shard")


class IndexConfig(IndexParamsConfig):
    """The clip-embedding vector index (clipguard.index): FAISS over L2-normalised 128-d vectors,
    built with :class:`IndexParamsConfig`, plus where and with how many threads it is built."""

    threads: int | None = Field(None, ge=1, description="FAISS OpenMP threads for building (None: all CPUs)")
    dir: str = Field("index", description="default output root, relative to work_dir")


class BaselinesConfig(_Section):
    """Perceptual-hash and embedding baselines (clipguard.baselines): vPDQ, per-frame PDQ, cosine.

    Matching follows Meta ThreatExchange's vPDQ: a query frame matches when some candidate
    frame lies within ``pdq_distance`` bits of it; frames below ``min_quality`` are ignored.
    """

    seconds_per_hash: float = Field(1.0, gt=0, description="one frame hash per this many seconds")
    pdq_distance: int = Field(31, ge=0, le=256, description="max Hamming distance of matching frame hashes")
    min_quality: int = Field(50, ge=0, le=100, description="PDQ quality below which a frame is ignored")
    vpdq_threads: int = Field(0, ge=0, description="vPDQ hashing threads (0: automatic)")
    dir: str = Field("baselines", description="hash caches and evaluations, relative to work_dir")


class RCIServingConfig(_Section):
    """Scoring unseen video pairs and searching the index with the student (clipguard.rci)."""

    model_uri: str = Field(
        "models:/clipguard-student@champion", description="default student: a models:/ URI or a model directory"
    )
    batch_size: int = Field(32, ge=1, description="pairs scored per student forward pass")
    top_k: int = Field(10, ge=1, description="candidates retrieved per query video")


class ServingConfig(_Section):
    """The BentoML service (clipguard.serving): where it reads from, batching, limits, reload.

    The student comes from ``rci.model_uri`` (the registry champion by default, or a model
    directory). Clip ids are looked up in the feature version directory of ``features_dir``
    (``files``: its feature table, read at start-up) or in the Feast online store of that
    version (``feast``: ``<work_dir>/<feast.dir>``, read per request); token matrices always
    come from the version's safetensors shards. Limits turn bad input into 4xx responses and
    overload into 429 (more than ``max_concurrency`` requests in flight) / 503 (a request
    that cannot complete within ``max_latency_ms``) instead of time-outs.
    """

    bentofile: str = Field(
        "bentofile.yaml",
        description="the bento's build file; its folder is the build context (the source checkout). "
        "A relative path is read from the current directory",
    )
    features_dir: str | None = Field(
        None,
        description="feature version directory, or a root holding <encoder_version>/ dirs "
        "(the model's encoder version picks one); None: <work_dir>/features",
    )
    feature_source: Literal["files", "feast"] = Field("files", description="where clip ids/embeddings/shard refs are looked up")
    index_dir: str | None = Field(None, description="FAISS index version directory for rci/search (None: search off)")
    encoder_dir: str | None = Field(
        None,
        description="encoder directory for uploaded media; None: the one the features record, else "
        "<work_dir>/encoders/<encoder_version>, else media endpoints are off",
    )
    default_threshold: float = Field(
        0.5, gt=0, lt=1, description="label threshold when the model carries none (registry metric / eval JSON)"
    )
    batching: bool = Field(True, description="adaptive batching of rci/score (False: one request per forward pass)")
    max_batch_size: int = Field(64, ge=2, description="pairs per adaptive batch")
    max_latency_ms: int = Field(
        1000,
        ge=1,
        description="BentoML's batching deadline: a queued request whose estimated completion exceeds it is "
        "answered 503. A safety valve: keep it well above two batches' run time (max_concurrency bounds the "
        "queue), or the dispatcher sheds instead of batching",
    )
    max_concurrency: int = Field(
        32, ge=1, description="requests in flight per worker; more are answered 429 at once (bounds queueing latency)"
    )
    workers: int = Field(
        2,
        ge=1,
        description="service worker processes, each with its own model, features and batching queue; "
        "2 on 2 cores takes the Python-bound request handling past one interpreter lock",
    )
    timeout_s: float = Field(60.0, gt=0, description="request time-out (BentoML answers 504 past it)")
    max_upload_bytes: int = Field(64 * 1024**2, ge=1, description="larger uploads get 413")
    max_pairs_per_request: int = Field(64, ge=1, description="pairs of one rci/score request")
    max_top_k: int = Field(50, ge=1, description="largest k of rci/search")
    reload_interval_s: float = Field(30.0, ge=0, description="how often the champion alias is checked (0: only on rci/reload)")
    feature_cache_clips: int = Field(8192, ge=0, description="clips whose tokens stay in memory (LRU)")
    gc_freeze: bool = Field(
        True,
        description="after each (re)load, collect once and gc.freeze() what is loaded, so that Python's full "
        "collections no longer walk the model, the imported libraries and the index (shorter latency tail)",
    )
    torch_threads: int | None = Field(
        None, ge=1, description="None = the CPUs this process may use, minus one for the HTTP event loop"
    )
    bentoml_home: str | None = Field(
        None, description="bento store (BENTOML_HOME) that packaging builds into; None: <work_dir>/bentoml"
    )


class BanksConfig(_Section):
    """Reference banks (clipguard.banks): curated sets of clips a query is matched against
    (reproduced-content references, violations, trend seeds), in a SQL database.

    Locally the banks live in ``<work_dir>/banks.db`` (SQLite); on a cluster set ``url`` to
    PostgreSQL (the ``cluster`` profile does). A bank searcher checks its bank's
    ``content_version`` at most every ``refresh_interval_s`` seconds, on search, and applies
    what changed without a restart.
    """

    url: str | None = Field(
        None,
        description="SQLAlchemy URL of the bank database, e.g. postgresql+psycopg://user@host:5432/banks; "
        "None: sqlite:///<work_dir>/banks.db",
    )
    refresh_interval_s: float = Field(
        5.0, ge=0, description="how often a bank searcher checks for a newer content_version (0: on every search)"
    )
    max_refs_per_request: int = Field(10_000, ge=1, description="references one banks/add or banks/remove request may carry")


class Config(BaseModel):
    """The whole configuration of one run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: str = "local"
    seed: int = 0
    data_root: str = "data/corpus"
    work_dir: str = "runs"
    media: MediaConfig = MediaConfig()
    policy: PolicyConfig = PolicyConfig()
    validation: ValidationConfig = ValidationConfig()
    synth: SynthConfig = SynthConfig()
    encoders: EncoderConfig = EncoderConfig()
    pretrain: PretrainConfig = PretrainConfig()
    features: FeaturesConfig = FeaturesConfig()
    feast: FeastConfig = FeastConfig()
    drift: DriftConfig = DriftConfig()
    alerts: AlertConfig = AlertConfig()
    registry: RegistryConfig = RegistryConfig()
    models: ModelsConfig = ModelsConfig()
    index: IndexConfig = IndexConfig()
    baselines: BaselinesConfig = BaselinesConfig()
    rci: RCIServingConfig = RCIServingConfig()
    serving: ServingConfig = ServingConfig()
    banks: BanksConfig = BanksConfig()

    @field_validator("profile")
    @classmethod
    def _profile_name(cls, v: str) -> str:
        if not v or "/" in v:
            raise ValueError(f"invalid profile name {v!r}")
        return v


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _read_profile(name: str, config_dir: Path, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    if name in seen:
        raise ValueError(f"profile inheritance cycle: {' -> '.join((*seen, name))}")
    path = config_dir / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in config_dir.glob("*.yaml"))
        raise FileNotFoundError(f"unknown profile {name!r}: no {path} (known: {', '.join(known) or 'none'})")
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: top level must be a mapping")
    parents = raw.pop("extends", None) or []
    merged: dict[str, Any] = {}
    for parent in [parents] if isinstance(parents, str) else parents:  # later parents win, the profile last
        merged = _deep_merge(merged, _read_profile(parent, config_dir, (*seen, name)))
    if merged:
        raw = _deep_merge(merged, raw)
    raw["profile"] = name
    return raw


def _set_dotted(d: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    cur = d
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
        if not isinstance(cur, dict):
            raise ValueError(f"override {key!r}: {p!r} is not a section")
    cur[parts[-1]] = value


def load_config(
    profile: str | None = None,
    overrides: dict[str, Any] | None = None,
    config_dir: Path | str | None = None,
) -> Config:
    """Load ``clipguard/configs/<profile>.yaml`` and apply dotted ``overrides`` (None values are skipped)."""
    cdir = Path(config_dir) if config_dir else CONFIG_DIR
    raw = _read_profile(profile or DEFAULT_PROFILE, cdir)
    for key, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(raw, key, value)
    return Config.model_validate(raw)


def with_overrides(cfg: Config, updates: dict[str, Any]) -> Config:
    """``cfg`` with dotted-key ``updates`` applied (``{"models.student.epochs": 3}``), validated again."""
    raw = cfg.model_dump(mode="json")
    for key, value in updates.items():
        _set_dotted(raw, key, value)
    return Config.model_validate(raw)


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """Parse ``key=value`` strings (value as YAML) from ``--set`` CLI options."""
    out: dict[str, Any] = {}
    for item in pairs:
        if "=" not in item:
            raise ValueError(f"--set expects key=value, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = yaml.safe_load(v)
    return out
