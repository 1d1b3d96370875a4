"""Copy-style augmentations for contrastive pretraining (two views of one clip).

A reproduced video is the original after edits that apply to the whole video: crops,
mirroring, borders / letterboxing, picture-in-picture, stickers and banners, colour
grading, blur, re-encoding noise. :class:`CopyAugment` draws one set of such edits per
clip and applies it to all the frames sampled from that clip, so two calls give two
"copies" of the same clip — the positive pair of MoCo. ``strength`` scales the ranges and
the probabilities (0 = only resizing).

Everything is batched (geometry through one ``grid_sample`` per stage, photometric edits
as per-clip factors), runs on float pixels in ``[0, 1]`` and draws from an explicit
``torch.Generator``, so a training run is reproducible and resumable.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from clipguard.encoders.vision import frames_to_pixels

_MAX_STICKERS = 3


def _u(g: torch.Generator, n: int, lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


def _warp(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``x`` (N x C x H x W) at ``in = scale * out + shift`` (normalised coords, per row).

    ``scale``/``shift`` are N x 2 (x, y). Returns the S x S warp and its in-bounds mask.
    """
    n = x.shape[0]
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = scale[:, 0], scale[:, 1]
    theta[:, :, 2] = shift
    grid = nn.functional.affine_grid(theta, [n, 1, size, size], align_corners=False)
    ones = torch.ones(n, 1, *x.shape[-2:])
    out = nn.functional.grid_sample(torch.cat([x, ones], 1), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out[:, :-1], out[:, -1:].clamp(0.0, 1.0)


class CopyAugment:
    """Random copy edits on a batch of clips; see the module docstring."""

    def __init__(self, image_size: int, strength: float = 1.0) -> None:
        if strength < 0:
            raise ValueError("strength must be >= 0")
        self.size = int(image_size)
        self.s = float(strength)

    def _p(self, base: float) -> float:
        return min(1.0, base * self.s)

    def _on(self, g: torch.Generator, b: int, base: float) -> torch.Tensor:
        return torch.rand(b, generator=g) < self._p(base)

    def __call__(self, frames: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """uint8 frames B x T x H x W x 3 -> augmented float pixels B x T x 3 x S x S in [0, 1]."""
        b, t = frames.shape[:2]
        x = frames_to_pixels(frames.flatten(0, 1), None)
        per_frame = lambda v: v.repeat_interleave(t, dim=0)  # noqa: E731 - clip params -> frames
        x = self._geometry(x, b, g, per_frame)
        x = self._picture_in_picture(x, b, t, g, per_frame)
        x = self._stickers(x, b, g, per_frame)
        x = self._photometric(x, b, g, per_frame)
        return x.clamp_(0.0, 1.0).view(b, t, 3, self.size, self.size)

    def _geometry(self, x: torch.Tensor, b: int, g: torch.Generator, per_frame) -> torch.Tensor:
        """Random resized crop (area 1 - 0.6 s .. 1, aspect 3/4 .. 4/3), mirror, and borders."""
        s = self.s
        area = _u(g, b, max(0.1, 1.0 - 0.6 * s), 1.0)
        ratio = torch.exp(_u(g, b, math.log(3 / 4), math.log(4 / 3)) * min(1.0, s))
        cw = torch.sqrt(area * ratio).clamp(max=1.0)
        ch = torch.sqrt(area / ratio).clamp(max=1.0)
        cx = (2 * _u(g, b) - 1) * (1 - cw)
        cy = (2 * _u(g, b) - 1) * (1 - ch)
        flip = torch.where(torch.rand(b, generator=g) < 0.5, -1.0, 1.0)
        # borders: the content is shrunk into a box (letterbox, pillarbox or both) on a fill colour
        border = self._on(g, b, 0.3)
        kind = torch.randint(0, 3, (b,), generator=g)
        fx = torch.where(border & (kind != 0), _u(g, b, 0.65, 0.95), torch.ones(b))
        fy = torch.where(border & (kind != 1), _u(g, b, 0.65, 0.95), torch.ones(b))
        ox = (2 * _u(g, b) - 1) * (1 - fx)
        oy = (2 * _u(g, b) - 1) * (1 - fy)
        fill = torch.where((torch.rand(b, generator=g) < 0.5)[:, None], torch.zeros(b, 3), torch.rand(b, 3, generator=g))
        sx, sy = flip * cw / fx, ch / fy
        scale = torch.stack([sx, sy], 1)
        shift = torch.stack([cx - sx * ox, cy - sy * oy], 1)
        out, mask = _warp(x, per_frame(scale), per_frame(shift), self.size)
        c = (torch.arange(self.size) + 0.5) / self.size * 2 - 1
        box_x = ((c[None, :] - ox[:, None]).abs() <= fx[:, None]).float()  # B x S
        box_y = ((c[None, :] - oy[:, None]).abs() <= fy[:, None]).float()
        mask = mask * per_frame(box_y[:, :, None] * box_x[:, None, :])[:, None]
        return out * mask + per_frame(fill)[:, :, None, None] * (1 - mask)

    def _picture_in_picture(self, x: torch.Tensor, b: int, t: int, g: torch.Generator, per_frame) -> torch.Tensor:
        """Either this clip as a large inset over the next clip of the batch, or that clip as a
        small inset over this one."""
        on = self._on(g, b, 0.15) & (b > 1)
        self_inset = torch.rand(b, generator=g) < 0.5
        side = torch.where(self_inset, _u(g, b, 0.55, 0.85), _u(g, b, 0.2, 0.4))
        px = (2 * _u(g, b) - 1) * (1 - side)
        py = (2 * _u(g, b) - 1) * (1 - side)
        if not bool(on.any()):
            return x
        other = x.view(b, t, *x.shape[1:]).roll(-1, dims=0).flatten(0, 1)
        inset_src = torch.where(per_frame(self_inset)[:, None, None, None], x, other)
        backdrop = torch.where(per_frame(self_inset)[:, None, None, None], other, x)
        scale = torch.stack([1 / side, 1 / side], 1)
        shift = torch.stack([-px / side, -py / side], 1)
        inset, mask = _warp(inset_src, per_frame(scale), per_frame(shift), self.size)
        pip = inset * mask + backdrop * (1 - mask)
        return torch.where(per_frame(on)[:, None, None, None], pip, x)

    def _stickers(self, x: torch.Tensor, b: int, g: torch.Generator, per_frame) -> torch.Tensor:
        """Up to three solid rectangles (stickers, caption banners) per clip."""
        on = self._on(g, b, 0.3)
        count = torch.randint(1, _MAX_STICKERS + 1, (b,), generator=g)
        k = _MAX_STICKERS
        w, h = _u(g, b * k, 0.1, 0.5).view(b, k), _u(g, b * k, 0.05, 0.15).view(b, k)
        x0, y0 = _u(g, b * k).view(b, k) * (1 - w), _u(g, b * k).view(b, k) * (1 - h)
        color = torch.rand(b, k, 3, generator=g)
        if not bool(on.any()):
            return x
        c = (torch.arange(self.size) + 0.5) / self.size
        active = on[:, None] & (torch.arange(k)[None, :] < count[:, None])  # B x k
        inside_x = (c[None, None, :] >= x0[..., None]) & (c[None, None, :] < (x0 + w)[..., None])  # B x k x S
        inside_y = (c[None, None, :] >= y0[..., None]) & (c[None, None, :] < (y0 + h)[..., None])
        masks = (inside_y[..., :, None] & inside_x[..., None, :] & active[..., None, None]).float()  # B x k x S x S
        for j in range(k):  # later stickers cover earlier ones
            m = per_frame(masks[:, j])[:, None]
            x = x * (1 - m) + per_frame(color[:, j])[:, :, None, None] * m
        return x

    def _photometric(self, x: torch.Tensor, b: int, g: torch.Generator, per_frame) -> torch.Tensor:
        """Colour grading, greyscale, Gaussian blur, noise — each on a random subset of clips."""
        j = 0.4 * self.s
        grade = self._on(g, b, 0.8)
        factors = torch.where(grade[:, None], _u(g, 3 * b, 1 - j, 1 + j).view(b, 3), torch.ones(b, 3))
        tint = torch.where(grade[:, None], 1 + 0.1 * self.s * (2 * torch.rand(b, 3, generator=g) - 1), torch.ones(b, 3))
        bright, contrast, sat = (per_frame(factors[:, i])[:, None, None, None] for i in range(3))
        x = x * bright
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * contrast + mean
        grey = x.mean(dim=1, keepdim=True)
        x = (x - grey) * sat + grey
        x = x * per_frame(tint)[:, :, None, None]

        to_grey = per_frame(self._on(g, b, 0.2))[:, None, None, None]
        x = torch.where(to_grey, x.mean(dim=1, keepdim=True).expand_as(x), x)

        blur = self._on(g, b, 0.3)
        sigma = _u(g, b, 0.3, 1.5)
        if bool(blur.any()):
            taps = torch.arange(-2, 3, dtype=torch.float32)
            kern = torch.exp(-0.5 * (taps[None, :] / sigma[:, None]) ** 2)
            kern = per_frame(kern / kern.sum(1, keepdim=True)).repeat_interleave(3, dim=0)  # (N*3) x 5
            n, c, hh, ww = x.shape
            y = nn.functional.pad(x.reshape(1, n * c, hh, ww), (2, 2, 2, 2), mode="replicate")
            y = nn.functional.conv2d(y, kern.view(n * c, 1, 1, 5), groups=n * c)
            y = nn.functional.conv2d(y, kern.view(n * c, 1, 5, 1), groups=n * c)
            x = torch.where(per_frame(blur)[:, None, None, None], y.view(n, c, hh, ww), x)

        noisy = self._on(g, b, 0.2)
        std = torch.where(noisy, _u(g, b, 0.01, 0.05), torch.zeros(b))
        return x + per_frame(std)[:, None, None, None] * torch.randn(x.shape, generator=g)
