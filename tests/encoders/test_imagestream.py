"""The pretraining scene stream: distinct, reproducible, and never from a held-out source."""

from __future__ import annotations

import torch

from clipguard.encoders.imagestream import SceneStream
from clipguard.synth.sources import HELDOUT_SOURCES, IMAGE_SOURCES


def test_scenes_are_reproducible_and_distinct():
    stream = SceneStream(32)
    a = stream.sample(6, 2, torch.Generator().manual_seed(1))
    b = stream.sample(6, 2, torch.Generator().manual_seed(1))
    assert a.shape == (6, 2, 32, 32, 3) and a.dtype == torch.uint8
    assert torch.equal(a, b)
    assert torch.equal(a[:, 0], a[:, 1])  # a still clip
    flat = a[:, 0].flatten(1).float()
    assert len({tuple(r.tolist()) for r in flat}) == 6
    c = stream.sample(6, 2, torch.Generator().manual_seed(2))
    assert not torch.equal(a, c)


def test_heldout_sources_are_left_out():
    kept = SceneStream(16, exclude=HELDOUT_SOURCES)
    everything = SceneStream(16, exclude=())
    held_images = sum(1 for s in HELDOUT_SOURCES if s in IMAGE_SOURCES)
    assert held_images > 0
    assert len(everything.real) > len(kept.real)
    procedural = SceneStream(16, real_share=0.0).sample(3, 1, torch.Generator().manual_seed(0))
    assert procedural.shape == (3, 1, 16, 16, 3)
