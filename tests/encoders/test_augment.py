import torch

from clipguard.encoders.augment import CopyAugment


def _frames(b: int = 4, t: int = 3, h: int = 40, w: int = 48) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (b, t, h, w, 3), generator=g, dtype=torch.uint8)


def test_shape_range_and_reproducibility():
    aug = CopyAugment(32, strength=1.0)
    frames = _frames()
    a = aug(frames, torch.Generator().manual_seed(5))
    b = aug(frames, torch.Generator().manual_seed(5))
    c = aug(frames, torch.Generator().manual_seed(6))
    assert a.shape == (4, 3, 3, 32, 32)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_zero_strength_is_only_resizing_and_mirroring():
    aug = CopyAugment(16, strength=0.0)
    frames = torch.full((2, 2, 16, 16, 3), 200, dtype=torch.uint8)
    out = aug(frames, torch.Generator().manual_seed(0))
    assert torch.allclose(out, torch.full_like(out, 200 / 255), atol=1e-5)


def test_edits_are_shared_by_the_frames_of_a_clip():
    aug = CopyAugment(24, strength=1.0)
    frames = _frames(b=6, t=1).repeat(1, 3, 1, 1, 1)  # three identical frames per clip
    out = aug(frames, torch.Generator().manual_seed(1))
    noise_free = out[:, 0] - out[:, 1]
    # identical input frames get identical geometry and colour; only per-pixel noise differs
    assert float(noise_free.abs().mean()) < 0.05
