"""Vision encoder: a Swin Transformer (``transformers.SwinModel``) over sampled frames.

Each sampled frame gives one token: Swin's pooled output (``C`` = ``embed_dim * 2**(stages-1)``:
64 in ``local``, 768 for Swin-T in ``gpu``) followed by the mean of the last stage's map over
each cell of a ``g x g`` region grid (``cfg.encoders.vision_region_grid``; 0 = none), so
``Dv = C * (1 + g*g)``. The pooled part says *what* a frame shows, the regions *where*: two
clips of one template share their background's colours and textures (the pooled vector)
but not the layout of what moves over it. A clip's visual vector is the mean of its frame
tokens, and the clip embedding (the retrieval vector, ``cfg.encoders.embedding_dim`` = 128)
is a :class:`~clipguard.encoders.heads.ProjectionHead` over it — the paper's 768 -> 128.

The model takes frames as float pixels in ``[0, 1]`` (N x 3 x S x S): :func:`frames_to_pixels`
turns decoded uint8 frames into them, and the ImageNet normalisation is part of the model,
so augmentations (:mod:`clipguard.encoders.augment`) work in plain pixel space.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
import torch
from torch import nn

from clipguard.config import EncoderConfig
from clipguard.encoders.heads import ProjectionHead

if TYPE_CHECKING:
    from transformers import SwinModel

log = logging.getLogger(__name__)

SWIN_CHECKPOINT_SUBDIR = "swin-tiny"
"""``cfg.encoders.checkpoint_dir/<this>``: a Hugging Face Swin checkpoint (gpu profile)."""

PATCH_SIZE = 4
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_MAX_FRAMES_PER_FORWARD = 256


def swin_window_size(image_size: int, n_stages: int, patch_size: int = PATCH_SIZE) -> int:
    """A window size that divides the feature map of every stage.

    The last stage's map is ``r = image_size / patch / 2**(stages-1)`` and every earlier map
    is ``r * 2**k``, so any divisor of ``r`` divides them all. Swin's default is 7
    (224 px -> r = 7); small maps up to 8 use one window over the whole last stage.
    """
    side, rem = divmod(image_size, patch_size * 2 ** (n_stages - 1))
    if rem or side < 1:
        raise ValueError(
            f"vision_image_size={image_size} must be a multiple of patch {patch_size} x 2**(stages-1)"
            f" = {patch_size * 2 ** (n_stages - 1)}"
        )
    if side <= 8:
        return side
    return max(d for d in range(1, 8) if side % d == 0)


def swin_config(enc: EncoderConfig):
    """The ``SwinConfig`` for ``cfg.encoders`` (no pretrained weights involved)."""
    from transformers import SwinConfig

    if len(enc.vision_depths) != len(enc.vision_heads):
        raise ValueError("vision_depths and vision_heads must have the same length")
    return SwinConfig(
        image_size=enc.vision_image_size,
        patch_size=PATCH_SIZE,
        num_channels=3,
        embed_dim=enc.vision_embed_dim,
        depths=list(enc.vision_depths),
        num_heads=list(enc.vision_heads),
        window_size=swin_window_size(enc.vision_image_size, len(enc.vision_depths)),
        drop_path_rate=0.0,
    )


def frames_to_pixels(frames: np.ndarray | torch.Tensor, image_size: int | None) -> torch.Tensor:
    """uint8 frames (N x H x W x 3, RGB) -> float pixels in [0, 1], N x 3 x S x S.

    ``image_size=None`` keeps the frames' own size (N x 3 x H x W).
    """
    x = torch.as_tensor(frames)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected N x H x W x 3 frames, got shape {tuple(x.shape)}")
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    if image_size is not None and x.shape[-2:] != (image_size, image_size) and x.shape[0] > 0:
        x = nn.functional.interpolate(
            x, size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False
        ).clamp_(0.0, 1.0)
    return x.contiguous()


class VisionEncoder(nn.Module):
    """Swin backbone (one pooled token per frame) plus the clip-embedding head."""

    pixel_mean: torch.Tensor
    pixel_std: torch.Tensor

    def __init__(self, backbone: SwinModel, embedding_dim: int, region_grid: int = 0) -> None:
        super().__init__()
        if region_grid < 0:
            raise ValueError(f"region_grid must be >= 0, got {region_grid}")
        self.backbone = backbone
        self.region_grid = int(region_grid)
        self.head = ProjectionHead(self.token_dim, embedding_dim)
        self.register_buffer("pixel_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @property
    def image_size(self) -> int:
        size = self.backbone.config.image_size
        if isinstance(size, (list, tuple)):
            raise TypeError(f"Swin image_size must be one int (square frames), got {size!r}")
        return int(size)

    @property
    def token_dim(self) -> int:
        return int(self.backbone.num_features) * (1 + self.region_grid**2)

    @property
    def embedding_dim(self) -> int:
        return cast(nn.Linear, self.head.net[-1]).out_features

    def frame_tokens(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels in [0, 1] (N x 3 x S x S) -> one token per frame (N x Dv): pooled + regions."""
        x = (pixels - self.pixel_mean) / self.pixel_std
        out = self.backbone(pixel_values=x)
        if not self.region_grid:
            return out.pooler_output
        n, length, c = out.last_hidden_state.shape
        side = math.isqrt(length)
        grid = out.last_hidden_state.transpose(1, 2).reshape(n, c, side, side)
        regions = nn.functional.adaptive_avg_pool2d(grid, self.region_grid)  # N x C x g x g
        return torch.cat([out.pooler_output, regions.flatten(2).transpose(1, 2).flatten(1)], dim=1)

    def embed(self, pooled: torch.Tensor) -> torch.Tensor:
        """Clip visual vectors (B x Dv) -> L2-normalised clip embeddings (B x E)."""
        return self.head(pooled)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Training path: B x T x 3 x S x S (T frames per clip) -> B x E clip embeddings."""
        b, t = pixels.shape[:2]
        tokens = self.frame_tokens(pixels.flatten(0, 1)).view(b, t, -1)
        return self.embed(tokens.mean(dim=1))

    @torch.inference_mode()
    def encode_clips(self, clips: list[np.ndarray]) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """Frames of several clips (each T_i x H x W x 3 uint8, T_i may differ) in one pass.

        Returns ``(tokens, pooled, embeddings)``: per-clip T_i x Dv frame tokens, the clips'
        mean tokens (B x Dv) and their clip embeddings (B x E).
        """
        if not clips:
            raise ValueError("encode_clips: no clips")
        if any(len(c) == 0 for c in clips):
            raise ValueError("encode_clips: every clip needs at least one frame")
        pixels = torch.cat([frames_to_pixels(c, self.image_size) for c in clips])
        flat = torch.cat([self.frame_tokens(chunk) for chunk in pixels.split(_MAX_FRAMES_PER_FORWARD)])
        tokens = list(flat.split([len(c) for c in clips]))
        pooled = torch.stack([t.mean(dim=0) for t in tokens])
        return tokens, pooled, self.embed(pooled)


def build_vision_encoder(enc: EncoderConfig) -> VisionEncoder:
    """A vision encoder for ``cfg.encoders``, its backbone random-initialised from the config.

    In the gpu profile, ``<checkpoint_dir>/swin-tiny`` (a Hugging Face Swin checkpoint) is
    loaded instead when present; its own config (image size, widths) then wins. Seed the
    init with :func:`clipguard.encoders.runtime.seeded`.
    """
    from transformers import SwinModel

    ckpt = Path(enc.checkpoint_dir) / SWIN_CHECKPOINT_SUBDIR if enc.checkpoint_dir else None
    if ckpt is not None and ckpt.is_dir():
        backbone = SwinModel.from_pretrained(str(ckpt), local_files_only=True, add_pooling_layer=True)
        if backbone.config.image_size != enc.vision_image_size:
            log.warning(
                "%s has image_size=%s; frames are resized to it (config says %s)",
                ckpt,
                backbone.config.image_size,
                enc.vision_image_size,
            )
        log.info("vision backbone loaded from %s", ckpt)
    else:
        if ckpt is not None:
            log.warning("no Swin checkpoint at %s: vision backbone is randomly initialised", ckpt)
        backbone = SwinModel(swin_config(enc), add_pooling_layer=True)
    return VisionEncoder(backbone, enc.embedding_dim, enc.vision_region_grid)
