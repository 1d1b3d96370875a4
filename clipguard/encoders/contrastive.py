"""Contrastive objectives: MoCo (momentum key encoder + queue of negatives) and CLIP.

* :func:`info_nce` — MoCo's loss: for each query, its key is the positive and every
  queued key a negative.
* :class:`MoCo` — the query encoder, its momentum (EMA) copy that encodes keys, and the
  FIFO queue of past keys (He et al., 2020).
* :func:`clip_loss` — CLIP's symmetric cross-entropy over a batch of aligned pairs
  (Radford et al., 2021): row ``i`` of ``a`` should match row ``i`` of ``b`` and nothing else.
* :func:`koleo_loss` — the Kozachenko–Leonenko entropy regulariser of SSCD (Pizzi et al.,
  2022): pushes each embedding away from its nearest neighbour in the batch, so that
  descriptors spread over the sphere and one similarity threshold works everywhere.

All embeddings are expected L2-normalised.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


def warmup_cosine_lr(step: int, total: int, warmup: int, peak: float) -> float:
    """Learning rate at ``step``: linear warm-up over ``warmup`` steps, then cosine decay to 0 at ``total``."""
    if warmup and step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def info_nce(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, temperature: float) -> torch.Tensor:
    """Mean InfoNCE of queries ``q`` (B x E) with positives ``k`` (B x E) and negatives ``queue`` (K x E)."""
    pos = (q * k).sum(dim=-1, keepdim=True)
    neg = q @ queue.t()
    logits = torch.cat([pos, neg], dim=1) / temperature
    return nn.functional.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long, device=q.device))


def clip_loss(a: torch.Tensor, b: torch.Tensor, temperature: float, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric CLIP loss between aligned rows of ``a`` and ``b`` (B x E each).

    ``mask`` (B, bool) keeps only the rows where both sides exist (e.g. clips with audio);
    with fewer than two rows left there is no contrast and the loss is 0 (still connected to
    the graph, so it can be summed with other terms).
    """
    if mask is not None:
        a, b = a[mask], b[mask]
    if len(a) < 2:
        return a.sum() * 0.0
    logits = a @ b.t() / temperature
    labels = torch.arange(len(a), device=a.device)
    return 0.5 * (nn.functional.cross_entropy(logits, labels) + nn.functional.cross_entropy(logits.t(), labels))


def koleo_loss(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``-mean(log(distance to the nearest other row))`` of ``x`` (B x E, L2-normalised)."""
    if len(x) < 2:
        return x.sum() * 0.0
    dist = torch.cdist(x, x)
    dist = dist + torch.diag(torch.full((len(x),), float("inf"), device=x.device, dtype=x.dtype))
    return -torch.log(dist.min(dim=1).values + eps).mean()


class MoCo(nn.Module):
    """Query encoder, momentum key encoder and queue. ``encoder(x)`` must return B x dim, normalised."""

    queue: torch.Tensor
    queue_ptr: torch.Tensor

    def __init__(
        self,
        encoder: nn.Module,
        dim: int,
        queue_size: int,
        momentum: float,
        temperature: float,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if not 0.0 <= momentum < 1.0:
            raise ValueError("momentum must be in [0, 1)")
        self.query = encoder
        self.key = copy.deepcopy(encoder).requires_grad_(False)
        self.momentum = float(momentum)
        self.temperature = float(temperature)
        queue = nn.functional.normalize(torch.randn(queue_size, dim, generator=generator), dim=1)
        self.register_buffer("queue", queue)
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def momentum_update(self) -> None:
        """``key <- m * key + (1 - m) * query``, parameter by parameter."""
        for pk, pq in zip(self.key.parameters(), self.query.parameters(), strict=True):
            pk.mul_(self.momentum).add_(pq.detach(), alpha=1.0 - self.momentum)

    @torch.no_grad()
    def encode_keys(self, x: torch.Tensor) -> torch.Tensor:
        """Update the key encoder by momentum, then encode ``x`` with it."""
        self.momentum_update()
        return self.key(x)

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Replace the oldest queued keys by ``keys`` (FIFO, wrapping around)."""
        n, size = len(keys), len(self.queue)
        if n >= size:
            self.queue.copy_(keys[-size:])
            self.queue_ptr.zero_()
            return
        ptr = int(self.queue_ptr)
        idx = (torch.arange(n) + ptr) % size
        self.queue[idx] = keys.detach()
        self.queue_ptr.fill_((ptr + n) % size)

    def loss(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """InfoNCE of queries against their keys and the current queue."""
        return info_nce(q, k, self.queue.detach().clone(), self.temperature)
