"""A tiny torch model with a ``from_pretrained`` loader, for registry tests only.

Importable as ``tests.registry.tiny_model`` so a registered model can name
``"tests.registry.tiny_model:TinyLinear.from_pretrained"`` as its loader (the tests add
``tests.registry`` to ``$CLIPGUARD_TRUSTED_LOADER_MODULES``).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

LOADER = "tests.registry.tiny_model:TinyLinear.from_pretrained"


class TinyLinear(torch.nn.Module):
    """``softmax(x W^T + b)`` over ``out_features`` classes."""

    def __init__(self, in_features: int = 4, out_features: int = 2):
        super().__init__()
        self.linear = torch.nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.linear(x), dim=-1)

    @classmethod
    def from_pretrained(cls, model_dir: str) -> "TinyLinear":
        config = json.loads((Path(model_dir) / "config.json").read_text())
        model = cls(config["in_features"], config["out_features"])
        model.load_state_dict(load_file(str(Path(model_dir) / "model.safetensors")))
        return model


def make_tiny(directory: Path, seed: int) -> tuple[TinyLinear, Path, dict]:
    """A seeded TinyLinear, its safetensors file and its config (with the loader)."""
    torch.manual_seed(seed)
    model = TinyLinear().eval()
    directory.mkdir(parents=True, exist_ok=True)
    weights = directory / f"tiny-{seed}.safetensors"
    save_file(model.state_dict(), str(weights))
    config = {"in_features": 4, "out_features": 2, "loader": LOADER}
    return model, weights, config
