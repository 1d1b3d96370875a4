import numpy as np
import pytest
import torch

from clipguard.encoders.runtime import seeded
from clipguard.encoders.vision import build_vision_encoder, frames_to_pixels, swin_window_size


@pytest.mark.parametrize(
    ("image_size", "stages", "window"),
    [(224, 4, 7), (64, 2, 8), (32, 2, 4), (128, 2, 4), (96, 2, 6)],
)
def test_window_divides_every_stage(image_size, stages, window):
    w = swin_window_size(image_size, stages)
    assert w == window
    for k in range(stages):
        side = image_size // 4 // 2**k
        assert side % min(w, side) == 0


def test_window_rejects_indivisible_size():
    with pytest.raises(ValueError, match="multiple"):
        swin_window_size(60, 3)


def test_frames_to_pixels_resizes_to_unit_range():
    frames = np.full((3, 48, 64, 3), 255, np.uint8)
    x = frames_to_pixels(frames, 32)
    assert x.shape == (3, 3, 32, 32)
    assert torch.allclose(x, torch.ones_like(x))
    assert frames_to_pixels(frames, None).shape == (3, 3, 48, 64)


def test_encode_clips_variable_frame_counts(tiny_cfg):
    with seeded(0):
        enc = build_vision_encoder(tiny_cfg.encoders).eval()
    rng = np.random.default_rng(0)
    clips = [rng.integers(0, 255, (t, 40, 40, 3), dtype=np.uint8) for t in (1, 3, 5)]
    tokens, pooled, emb = enc.encode_clips(clips)
    dv = enc.token_dim
    grid = tiny_cfg.encoders.vision_region_grid
    assert dv == tiny_cfg.encoders.vision_embed_dim * 2 * (1 + grid**2)
    assert [tuple(t.shape) for t in tokens] == [(1, dv), (3, dv), (5, dv)]
    assert pooled.shape == (3, dv)
    assert torch.allclose(pooled[1], tokens[1].mean(0), atol=1e-6)
    assert emb.shape == (3, tiny_cfg.encoders.embedding_dim)
    assert torch.allclose(emb.norm(dim=1), torch.ones(3), atol=1e-5)
    # one clip alone gives the same result as inside a batch
    alone = enc.encode_clips(clips[2:])[2]
    assert torch.allclose(alone[0], emb[2], atol=1e-5)


def test_encode_clips_rejects_empty_clip(tiny_cfg):
    enc = build_vision_encoder(tiny_cfg.encoders)
    with pytest.raises(ValueError, match="at least one frame"):
        enc.encode_clips([np.zeros((0, 32, 32, 3), np.uint8)])


def test_same_seed_same_weights(tiny_cfg):
    with seeded(3):
        a = build_vision_encoder(tiny_cfg.encoders)
    with seeded(3):
        b = build_vision_encoder(tiny_cfg.encoders)
    for (ka, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(va, vb), ka


def test_frame_token_is_pooled_vector_then_regions(tiny_cfg):
    """The first C values are Swin's pooled output; the regions are means over grid cells, so
    their mean is the pooled vector again (the map's cells are equal-sized)."""
    with seeded(0):
        enc = build_vision_encoder(tiny_cfg.encoders).eval()
    assert enc.region_grid == 2
    c = enc.backbone.num_features
    pixels = torch.rand(3, 3, enc.image_size, enc.image_size)
    with torch.inference_mode():
        tok = enc.frame_tokens(pixels)
        pooled = enc.backbone(pixel_values=(pixels - enc.pixel_mean) / enc.pixel_std).pooler_output
    assert tok.shape == (3, c * 5)
    assert torch.allclose(tok[:, :c], pooled, atol=1e-5)
    regions = tok[:, c:].view(3, 4, c)
    assert torch.allclose(regions.mean(dim=1), pooled, atol=1e-5)
    # layout: mirroring the frame swaps left and right regions, the pooled vector barely moves
    with torch.inference_mode():
        flipped = enc.frame_tokens(pixels.flip(-1))
    assert not torch.allclose(flipped[:, c:], tok[:, c:], atol=1e-3)


def test_region_grid_zero_is_the_pooled_vector(tiny_cfg):
    enc_cfg = tiny_cfg.encoders.model_copy(update={"vision_region_grid": 0})
    with seeded(0):
        enc = build_vision_encoder(enc_cfg).eval()
    assert enc.token_dim == enc.backbone.num_features
