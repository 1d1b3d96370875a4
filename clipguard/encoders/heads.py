"""Small trainable heads on top of the frozen/pretrained backbones."""

from __future__ import annotations

import torch
from torch import nn


class ProjectionHead(nn.Module):
    """MoCo-v2 style MLP ``in_dim -> hidden -> out_dim`` (GELU), output L2-normalised."""

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int | None = None) -> None:
        super().__init__()
        hidden = hidden_dim or max(in_dim, out_dim)
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.net(x), dim=-1)
