"""MatchLite: the lightweight RCI student (MatchLM2Lite §3.3, Algorithm 1, Appendix A.1/D.1).

MatchLite scores a (query, candidate) pair from the cached token features of frozen
encoders (Swin-T frames, Whisper audio, MiniLM text; see :mod:`clipguard.features`):

1. **Multimodal perception.** Each modality is projected to a common width ``d``; two
   BiXT blocks (bidirectional cross-attention) mix visual with text and visual with audio,
   giving the mixed views ``f^vt, f^tv`` and ``f^va, f^av`` of each video (eq. 2).
2. **Paired feature fusion.** For each view ``m`` in ``{v, va, vt, a, av, t, tv}`` the
   query x candidate cosine-similarity map ``S^m`` is computed; for the visual views
   ``{v, va, vt}`` the dense pairwise tensor ``D^m_ij = [f_q,i ; f_c,j]`` also goes through a
   residual conv block to an enhanced map ``E^m``.
3. **Compact decision.** All maps, laid on one fixed grid, are stacked on the channel axis
   and fed to a ResNet-34 whose embedding ``z_s`` feeds a multi-task head. With
   ``match_features`` a second head adds to the logits what it reads from, per view, four
   numbers of its cosine map at native size (before any pooling): the mean over query tokens
   of their best match in the candidate, the same the other way round, the map's maximum,
   and the cosine of the two sides' mean tokens. Pooling a map to the grid
   averages a sharp match away (one identical caption among 64 text tokens, a copy that
   fills part of the frame); these keep it, in a form that does not depend on which side
   of the pair is the query.

Variable lengths are handled with masks: padded positions are zeroed before anything
else, excluded from attention, and zero in every map; each map is placed on a fixed canvas
(``max_*_tokens`` per modality) before pooling to the grid, so how much padding a batch
carries never changes a pair's output. ``modalities`` drops views for the Table 2
ablation (V, V+A, V+T, V+A+T).

The file also holds what both RCI models share: :class:`MultiTaskHead` (a shared
projection then one linear layer per task, §3.2) and :class:`PairClassifierOutput`.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F

from clipguard.config import MatchLiteArchitecture, ModelsConfig
from clipguard.models.frames import TIME_MODALITIES, token_indices
from clipguard.models.kd import multitask_cross_entropy

ARCHITECTURE_REVISION = 2
"""Bumped when the forward pass changes under an unchanged config (2: match statistics with
the mean-token cosine). Part of every student version, so a student trained by older code
is not reused as if it were this one."""
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"

VIEWS: tuple[str, ...] = ("v", "va", "vt", "a", "av", "t", "tv")
"""The seven modality views of Algorithm 1, in the order their maps are stacked."""

VISUAL_VIEWS: tuple[str, ...] = ("v", "va", "vt")
"""Views that also get a dense pairwise map through the residual conv block."""

VIEWS_BY_MODALITIES: dict[str, tuple[str, ...]] = {
    "v": ("v",),
    "va": ("v", "va", "a", "av"),
    "vt": ("v", "vt", "t", "tv"),
    "vat": VIEWS,
}
"""Views kept by each ``modalities`` setting (Table 2: V, V+A, V+T, V+A+T)."""

_VIEW_MODALITY = {"v": "visual", "va": "visual", "vt": "visual", "a": "audio", "av": "audio", "t": "text", "tv": "text"}
RESNET34_DEPTHS = (3, 4, 6, 3)


class MatchLiteConfig(MatchLiteArchitecture):
    """Architecture of a MatchLite model (saved as ``config.json`` next to its weights): the
    fields of :class:`clipguard.config.MatchLiteArchitecture` (defined there once, with their
    defaults and checks) plus the task set the head predicts."""

    tasks: dict[str, int]

    @property
    def views(self) -> tuple[str, ...]:
        """The modality views this model keeps (Table 2 ablation)."""
        return VIEWS_BY_MODALITIES[self.modalities]

    @classmethod
    def from_settings(cls, models: ModelsConfig) -> MatchLiteConfig:
        """The architecture ``cfg.models`` describes (``cfg.models.student`` + the task set)."""
        architecture = models.student.model_dump(include=set(MatchLiteArchitecture.model_fields))
        return cls(tasks=dict(models.tasks), **architecture)

    @property
    def embedding_dim(self) -> int:
        """Size of the student embedding ``z_s`` (the ResNet's last width)."""
        return self.resnet_widths[-1]

    @property
    def uses_audio(self) -> bool:
        return "a" in self.views

    @property
    def uses_text(self) -> bool:
        return "t" in self.views

    def max_tokens(self, modality: str) -> int:
        return {"visual": self.max_visual_tokens, "audio": self.max_audio_tokens, "text": self.max_text_tokens}[modality]

    def token_indices(self, modality: str, length: int) -> tuple[int, ...]:
        """Which of a clip's ``length`` tokens of ``modality`` this model reads
        (:func:`clipguard.models.frames.token_indices`; time axes resampled when ``resample_time``)."""
        return token_indices(length, self.max_tokens(modality), self.resample_time and modality in TIME_MODALITIES)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MatchLiteConfig:
        return cls.model_validate(d)


@dataclass
class ClipFeatures:
    """The cached encoder features of a batch of clips (one side of a pair), zero-padded.

    ``visual`` (B, Tv, Dv) Swin frame tokens, ``audio`` (B, Ta, Da) Whisper tokens, ``text``
    (B, Tt, Dt) MiniLM token states; each with a bool mask (B, T), True at real tokens. A
    modality the model does not use may be ``None``; a clip without audio has an all-False
    audio mask.
    """

    visual: torch.Tensor
    visual_mask: torch.Tensor
    audio: torch.Tensor | None = None
    audio_mask: torch.Tensor | None = None
    text: torch.Tensor | None = None
    text_mask: torch.Tensor | None = None

    def modality(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        x, mask = getattr(self, name), getattr(self, f"{name}_mask")
        if x is None or mask is None:
            raise ValueError(f"the model uses the {name} modality but no {name} features/mask were given")
        if x.ndim != 3 or mask.shape != x.shape[:2]:
            raise ValueError(
                f"{name} features must be (B, T, D) with a (B, T) mask, got {tuple(x.shape)} and {tuple(mask.shape)}"
            )
        return x, mask.bool()

    def to(self, device: torch.device | str) -> ClipFeatures:
        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device)

        return ClipFeatures(
            self.visual.to(device),
            self.visual_mask.to(device),
            move(self.audio),
            move(self.audio_mask),
            move(self.text),
            move(self.text_mask),
        )


@dataclass
class PairClassifierOutput:
    """What both RCI models return for a batch of pairs.

    ``logits``: task -> (B, classes); ``embedding``: the pair representation used for
    distillation (MatchLM: last-token hidden state; MatchLite: ``z_s``); ``loss``: the sum
    of the per-task cross-entropies (eq. 1) when labels were given, with ``task_losses``.
    """

    logits: dict[str, torch.Tensor]
    embedding: torch.Tensor
    loss: torch.Tensor | None = None
    task_losses: dict[str, torch.Tensor] = field(default_factory=dict)


class MultiTaskHead(nn.Module):
    """Shared projection, then one linear classifier per task (§3.2, Fig. 3b).

    The main task is ``rci`` (2 classes); the auxiliary tasks supervise sub-labels and are
    ignored at inference.
    """

    def __init__(self, in_dim: int, hidden_dim: int, tasks: dict[str, int], dropout: float) -> None:
        super().__init__()
        self.shared = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.GELU(), nn.Dropout(dropout))
        self.heads = nn.ModuleDict({name: nn.Linear(hidden_dim, n) for name, n in tasks.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.shared(x)
        return {name: head(h) for name, head in self.heads.items()}


def masked_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
    """``softmax(Q K^T / sqrt(d_h)) V`` over the keys in ``key_mask`` (N, Lk); a batch row with no
    valid key reads nothing (zeros). Inputs are (N, h, L, d_h).

    One fused ``scaled_dot_product_attention`` call: the (N, h, Lq, Lk) score tensor is never
    materialised, masked, normalised and multiplied op by op.
    """
    out = F.scaled_dot_product_attention(query, key, value, attn_mask=key_mask[:, None, None, :])
    return torch.where(key_mask.any(dim=-1)[:, None, None, None], out, 0.0)


class BiXTBlock(nn.Module):
    """One bidirectional cross-attention block (BiXT, Hiller et al. 2024; MatchLite eq. 2).

    Both sequences attend to each other *simultaneously* through one shared similarity
    matrix ``A = R_a R_b^T / sqrt(d_h)`` of per-side "reference" projections: ``a`` reads
    ``b`` with a softmax over ``A``'s rows, ``b`` reads ``a`` with a softmax over its columns
    (i.e. over the rows of ``A^T = R_b R_a^T / sqrt(d_h)``: two fused attention calls).
    Each side then has a residual, a pre-LayerNorm feed-forward network and another residual.
    """

    def __init__(self, dim: int, heads: int, dropout: float, ffn_ratio: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.norm_a, self.norm_b = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.ref_a, self.ref_b = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.value_a, self.value_b = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.out_a, self.out_b = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.ffn_a, self.ffn_b = (
            nn.Sequential(
                nn.LayerNorm(dim),
                nn.Linear(dim, ffn_ratio * dim),
                nn.GELU(),
                nn.Dropout(dropout),
                nn.Linear(ffn_ratio * dim, dim),
            )
            for _ in range(2)
        )
        self.dropout = nn.Dropout(dropout)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.heads, self.head_dim).transpose(1, 2)

    def _merge(self, x: torch.Tensor) -> torch.Tensor:
        b, _, t, _ = x.shape
        return x.transpose(1, 2).reshape(b, t, self.heads * self.head_dim)

    def forward(
        self, a: torch.Tensor, mask_a: torch.Tensor, b: torch.Tensor, mask_b: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``a`` (N, La, d), ``b`` (N, Lb, d), bool masks (N, La) / (N, Lb) -> updated ``a``, ``b``."""
        na, nb = self.norm_a(a), self.norm_b(b)
        ref_a, ref_b = self._split(self.ref_a(na)), self._split(self.ref_b(nb))
        upd_a = masked_attention(ref_a, ref_b, self._split(self.value_b(nb)), mask_b)  # rows of A
        upd_b = masked_attention(ref_b, ref_a, self._split(self.value_a(na)), mask_a)  # columns of A
        a = a + self.dropout(self.out_a(self._merge(upd_a)))
        b = b + self.dropout(self.out_b(self._merge(upd_b)))
        a = a + self.dropout(self.ffn_a(a))
        b = b + self.dropout(self.ffn_b(b))
        return a * mask_a[..., None], b * mask_b[..., None]


class BiXT(nn.Module):
    """A stack of :class:`BiXTBlock` between two modalities: ``[f^xy, f^yx] = BiXT(f^x, f^y)``."""

    def __init__(self, dim: int, heads: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(BiXTBlock(dim, heads, dropout) for _ in range(layers))

    def forward(
        self, a: torch.Tensor, mask_a: torch.Tensor, b: torch.Tensor, mask_b: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        for block in self.blocks:
            a, b = block(a, mask_a, b, mask_b)
        return a, b


def _conv_bn(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False), nn.BatchNorm2d(cout))


def fuse_conv_bn_(module: nn.Module) -> int:
    """Fold every ``BatchNorm2d`` that directly follows a ``Conv2d`` in an ``nn.Sequential`` into the conv.

    In place, for inference only: the folded conv computes ``bn(conv(x))`` with the batch norm's
    running statistics (``torch.nn.utils.fusion.fuse_conv_bn_eval``), one kernel instead of two
    and a Python module call less per conv. Returns the number of pairs folded.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = 0
    for name, child in list(module.named_children()):
        if isinstance(child, nn.Sequential):
            layers: list[nn.Module] = list(child)
            kept: list[nn.Module] = []
            i = 0
            while i < len(layers):
                conv, bn = layers[i], (layers[i + 1] if i + 1 < len(layers) else None)
                if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                    kept.append(fuse_conv_bn_eval(conv.eval(), bn.eval()))
                    folded += 1
                    i += 2
                else:
                    kept.append(layers[i])
                    i += 1
            if len(kept) != len(layers):
                child = kept[0] if len(kept) == 1 else nn.Sequential(*kept)
                setattr(module, name, child)
        folded += fuse_conv_bn_(child)
    return folded


class ResBlockConv(nn.Module):
    """Visual feature enhancement (A.1): 3 x (Conv2d 3x3 + BatchNorm [+ ReLU]) with a residual projection.

    Turns the dense pairwise tensor ``D^m`` (2d channels, M x N) into ``E^m``.
    """

    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv_bn(in_channels, channels, 3),
            nn.ReLU(inplace=True),
            _conv_bn(channels, channels, 3),
            nn.ReLU(inplace=True),
            _conv_bn(channels, channels, 3),
        )
        self.shortcut = _conv_bn(in_channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class BasicBlock(nn.Module):
    """The ResNet basic block (two 3x3 convs, identity or 1x1 projection shortcut)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = _conv_bn(cin, cout, 3, stride)
        self.conv2 = _conv_bn(cout, cout, 3)
        self.shortcut = _conv_bn(cin, cout, 1, stride) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv2(F.relu(self.conv1(x))) + self.shortcut(x))


class CompactDecisionModule(nn.Module):
    """ResNet-34 (stages of 3, 4, 6, 3 basic blocks) over the stacked maps (§3.3).

    The first conv takes the number of stacked map channels (A.1); the widths come from the
    config (64..512 is the standard ResNet-34). Output: the embedding ``z_s`` (global average
    pool of the last stage).
    """

    def __init__(self, in_channels: int, widths: tuple[int, int, int, int]) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        stages: list[nn.Module] = []
        cin = widths[0]
        for i, (width, depth) in enumerate(zip(widths, RESNET34_DEPTHS)):
            stride = 1 if i == 0 else 2
            blocks = [BasicBlock(cin, width, stride)] + [BasicBlock(width, width, 1) for _ in range(depth - 1)]
            stages.append(nn.Sequential(*blocks))
            cin = width
        self.stages = nn.Sequential(*stages)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x)).mean(dim=(2, 3))


MATCH_STATS = 4
"""numbers per view that :func:`match_statistics` gives"""


def match_statistics(sim: torch.Tensor, mq: torch.Tensor, mc: torch.Tensor, fq: torch.Tensor, fc: torch.Tensor) -> torch.Tensor:
    """Per view of cosine maps ``sim`` (B, V, M, N; zero off the pair mask) with 0/1 token
    masks ``mq`` (B, M) / ``mc`` (B, N) and the normalised tokens ``fq`` (B, V, M, d) / ``fc``
    (B, V, N, d): (B, V, 4) = [mean over real query tokens of their best candidate match, the
    same candidate -> query, the best match overall, the cosine of the two sides' mean tokens
    (a clip-level similarity, as a sentence embedding is the mean of its token states)].

    Swapping query and candidate swaps the first two and keeps the others. A side without
    real tokens (no audio track) gives zeros.
    """
    neg = torch.finfo(sim.dtype).min
    valid = (mq[:, None, :, None] * mc[:, None, None, :]) > 0  # B, 1, M, N
    masked = sim.masked_fill(~valid, neg)
    row_best = masked.amax(dim=-1)  # B, V, M
    col_best = masked.amax(dim=-2)  # B, V, N
    nq, nc = mq.sum(-1).clamp(min=1)[:, None], mc.sum(-1).clamp(min=1)[:, None]
    has = ((mq.sum(-1) > 0) & (mc.sum(-1) > 0)).to(sim.dtype)[:, None]
    q_to_c = (row_best.clamp(min=-1.0) * mq[:, None, :]).sum(-1) / nq
    c_to_q = (col_best.clamp(min=-1.0) * mc[:, None, :]).sum(-1) / nc
    best = row_best.amax(dim=-1).clamp(min=-1.0)
    mean_q = (fq * mq[:, None, :, None]).sum(-2)  # B, V, d (fq is zero at padding already)
    mean_c = (fc * mc[:, None, :, None]).sum(-2)
    pooled = F.cosine_similarity(mean_q, mean_c, dim=-1, eps=1e-6)
    return torch.stack([q_to_c, c_to_q, best, pooled], dim=-1) * has[..., None]


def _on_canvas(x: torch.Tensor, mask: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop/zero-pad the token axis of ``x`` (B, T, d) and its bool ``mask`` (B, T) to ``size``
    tokens (the crop only drops padding); the mask comes back as 0/1 in ``x``'s dtype."""
    x, weight = x[:, :size], mask[:, :size].to(x.dtype)
    if x.shape[1] < size:
        x = F.pad(x, (0, 0, 0, size - x.shape[1]))
        weight = F.pad(weight, (0, size - weight.shape[1]))
    return x, weight


def _dense_pairs(fq: torch.Tensor, mq: torch.Tensor, fc: torch.Tensor, mc: torch.Tensor) -> torch.Tensor:
    """The dense pairwise tensor ``D_ij = [f_q,i ; f_c,j]`` on the pair mask, (B, 2d, M, N).

    ``fq`` (B, M, d) / ``fc`` (B, N, d) are zero at padded tokens and ``mq`` / ``mc`` are their
    0/1 masks, so ``f_q,i * m_c,j`` is ``D``'s query half times the pair mask ``m_q,i m_c,j``.
    Laid out channels-last ((B, M, N, 2d) viewed as (B, 2d, M, N)): the convolutions that
    read it run faster in that layout. Without autograd both halves are written straight
    into one buffer (no concatenation copy).
    """
    q_half, q_mask = fq[:, :, None, :], mc[:, None, :, None]  # (B, M, 1, d) x (B, 1, N, 1)
    c_half, c_mask = fc[:, None, :, :], mq[:, :, None, None]  # (B, 1, N, d) x (B, M, 1, 1)
    if torch.is_grad_enabled() and (fq.requires_grad or fc.requires_grad):  # out= does not record gradients
        return torch.cat((q_half * q_mask, c_half * c_mask), dim=-1).permute(0, 3, 1, 2)
    b, m, d = fq.shape
    out = torch.empty(b, m, fc.shape[1], 2 * d, dtype=fq.dtype, device=fq.device)
    torch.mul(q_half, q_mask, out=out[..., :d])
    torch.mul(c_half, c_mask, out=out[..., d:])
    return out.permute(0, 3, 1, 2)


class MatchLiteForPairClassification(nn.Module):
    """MatchLite (Algorithm 1): query/candidate cached features -> multi-task logits + ``z_s``."""

    def __init__(self, config: MatchLiteConfig) -> None:
        super().__init__()
        self.config = config
        d = config.hidden_size
        dims = {"visual": config.visual_dim, "audio": config.audio_dim, "text": config.text_dim}
        used = {_VIEW_MODALITY[v] for v in config.views}
        self.projections = nn.ModuleDict(
            {m: nn.Sequential(nn.Linear(dims[m], d), nn.LayerNorm(d)) for m in ("visual", "audio", "text") if m in used}
        )
        self.bixt = nn.ModuleDict()
        if config.uses_text:
            self.bixt["vt"] = BiXT(d, config.bixt_heads, config.bixt_layers, config.dropout)
        if config.uses_audio:
            self.bixt["va"] = BiXT(d, config.bixt_heads, config.bixt_layers, config.dropout)
        visual_views = [v for v in config.views if v in VISUAL_VIEWS]
        self.enhance = nn.ModuleDict({v: ResBlockConv(2 * d, config.conv_channels) for v in visual_views})
        in_channels = len(visual_views) * config.conv_channels + len(config.views)
        self.decision = CompactDecisionModule(in_channels, config.resnet_widths)
        self.head = MultiTaskHead(config.embedding_dim, config.head_hidden_size, config.tasks, config.head_dropout)
        # the match statistics reach the logits on their own path (added to the head's), so that
        # "this caption is identical" is learnt from a few pairs instead of through the ResNet
        self.match_head = (
            MultiTaskHead(MATCH_STATS * len(config.views), config.head_hidden_size, config.tasks, config.head_dropout)
            if config.match_features
            else None
        )
        self.inference_only = False

    # -- Multimodal perception (Algorithm 1, lines 1-11) ------------------------------------

    def perceive(self, clips: ClipFeatures) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """The views ``f^m`` (B, T, d) of one side of the batch, each with its bool mask."""
        feats: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        for modality, projection in self.projections.items():
            x, mask = clips.modality(modality)
            limit = self.config.max_tokens(modality)
            if x.shape[1] > limit and mask[:, limit:].any():
                raise ValueError(
                    f"{modality} input has real tokens beyond max_{modality}_tokens={limit}; subsample it "
                    "(clipguard.models.frames.uniform_indices) or raise the limit"
                )
            x = torch.where(mask[..., None], x, 0.0)
            feats[modality] = (projection(x) * mask[..., None], mask)
        views = {"v": feats["visual"]}
        for pair, other in (("vt", "text"), ("va", "audio")):
            if pair in self.bixt:
                (fv, mv), (fo, mo) = feats["visual"], feats[other]
                mixed_v, mixed_o = self.bixt[pair](fv, mv, fo, mo)
                views[pair] = (mixed_v, mv)
                views[pair[::-1]] = (mixed_o, mo)
                views[pair[1]] = feats[other]
        return views

    # -- Paired feature fusion (Algorithm 1, lines 12-22) -----------------------------------

    def fuse(
        self, query: dict[str, tuple[torch.Tensor, torch.Tensor]], candidate: dict[str, tuple[torch.Tensor, torch.Tensor]]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The stacked maps ``F = [E^m ..., S^m ...]`` (B, C, grid, grid), and the match
        features of the cosine maps (B, 3 * views; None without ``match_features``).

        Every map lives on its modality's fixed canvas (``max_*_tokens`` squared); the views of
        one modality share a mask, so their cosine maps are computed as one batch, and maps on
        the same canvas are pooled to the grid together (pooling is per channel: the same
        values as one view at a time, in the same channel order).
        """
        cfg = self.config
        enhanced: list[torch.Tensor] = []
        similarity: list[tuple[int, torch.Tensor]] = []
        matches: list[torch.Tensor] = []
        for modality in ("visual", "audio", "text"):
            views = [v for v in cfg.views if _VIEW_MODALITY[v] == modality]
            if not views:
                continue
            canvas = cfg.max_tokens(modality)
            q = [_on_canvas(*query[v], canvas) for v in views]
            c = [_on_canvas(*candidate[v], canvas) for v in views]
            mq, mc = q[0][1], c[0][1]  # (B, canvas) 0/1: the views of a modality share its mask
            pair_mask = (mq[:, :, None] * mc[:, None, :]).unsqueeze(1)  # B, 1, canvas, canvas
            fq = F.normalize(torch.stack([f for f, _ in q], dim=1), dim=-1)  # B, views, canvas, d
            fc = F.normalize(torch.stack([f for f, _ in c], dim=1), dim=-1)
            sim = (fq @ fc.transpose(-1, -2)) * pair_mask
            similarity.append((canvas, sim))
            if cfg.match_features:
                matches.append(match_statistics(sim, mq, mc, fq, fc).flatten(1))
            for view, (fq_v, _), (fc_v, _) in zip(views, q, c):
                if view in self.enhance:
                    enhanced.append(self.enhance[view](_dense_pairs(fq_v, mq, fc_v, mc)) * pair_mask)
        maps = ([(cfg.max_visual_tokens, torch.cat(enhanced, dim=1))] if enhanced else []) + similarity
        pooled = [
            # channels-last: adaptive pooling by a non-integer ratio is ~10x faster on CPU
            F.adaptive_avg_pool2d(
                torch.cat([m for _, m in group], dim=1).contiguous(memory_format=torch.channels_last), cfg.grid_size
            )
            for _, group in itertools.groupby(maps, key=lambda item: item[0])
        ]
        return torch.cat(pooled, dim=1), (torch.cat(matches, dim=1) if matches else None)

    # -- Compact decision (Algorithm 1, lines 23-26) ----------------------------------------

    def forward(
        self, query: ClipFeatures, candidate: ClipFeatures, labels: dict[str, torch.Tensor] | None = None
    ) -> PairClassifierOutput:
        """Score a batch of pairs.

        Args:
            query, candidate: the cached features of the two sides (same batch size).
            labels: optional task -> (B,) class ids (``-100`` = no label for that pair/task).
        Returns:
            logits per task, the embedding ``z_s`` (B, ``embedding_dim``) and, with labels,
            the multi-task loss (eq. 1).
        """
        fused, match = self.fuse(self.perceive(query), self.perceive(candidate))
        z = self.decision(fused)
        logits = self.head(z)
        if self.match_head is not None and match is not None:
            logits = {t: v + w for (t, v), w in zip(logits.items(), self.match_head(match).values(), strict=True)}
        if labels is None:
            return PairClassifierOutput(logits, z)
        loss, per_task = multitask_cross_entropy(logits, labels)
        return PairClassifierOutput(logits, z, loss, per_task)

    # -- Inference form ---------------------------------------------------------------------

    def for_inference(self) -> MatchLiteForPairClassification:
        """Eval mode with every conv + BatchNorm folded into one conv (in place; returns ``self``).

        The served and benchmarked form: the same scores (to float rounding, ~1e-7) with ~30%
        less time per single-pair forward on CPU. A folded model cannot train or be saved
        (its state dict no longer has the BatchNorm entries); load the directory again instead.
        """
        self.eval()
        if not self.inference_only:
            fuse_conv_bn_(self)
            self.inference_only = True
        return self

    def train(self, mode: bool = True) -> MatchLiteForPairClassification:
        if mode and getattr(self, "inference_only", False):
            raise RuntimeError("this MatchLite was folded for inference (for_inference); load it again to train")
        return super().train(mode)

    # -- Persistence ------------------------------------------------------------------------

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``model.safetensors`` (weights and BatchNorm statistics)."""
        if self.inference_only:
            raise RuntimeError("this MatchLite was folded for inference (for_inference); save the model it was loaded from")
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        (out / CONFIG_FILE).write_text(json.dumps(self.config.to_dict(), indent=2))
        save_file({k: v.detach().contiguous() for k, v in self.state_dict().items()}, str(out / WEIGHTS_FILE))
        return out

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: torch.device | str = "cpu") -> MatchLiteForPairClassification:
        """Rebuild a model written by :meth:`save_pretrained` (safetensors only, no pickle)."""
        path = Path(directory)
        config = MatchLiteConfig.from_dict(json.loads((path / CONFIG_FILE).read_text()))
        model = cls(config)
        model.load_state_dict(load_file(str(path / WEIGHTS_FILE), device=str(device)))
        return model.to(device)
