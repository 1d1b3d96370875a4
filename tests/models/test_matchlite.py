"""MatchLite, the student (Algorithm 1): shapes, masking, ablation views, persistence."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from clipguard.config import Config
from clipguard.models.matchlite import (
    VIEWS_BY_MODALITIES,
    ClipFeatures,
    MatchLiteConfig,
    MatchLiteForPairClassification,
)


def make_student(cfg: Config, **changes) -> MatchLiteForPairClassification:
    torch.manual_seed(0)
    config = MatchLiteConfig.from_settings(cfg.models)
    if changes:
        config = MatchLiteConfig.from_dict({**config.to_dict(), **changes})
    return MatchLiteForPairClassification(config)


def features(
    config: MatchLiteConfig, lengths: list[tuple[int, int, int]], pad: tuple[int, int, int] | None = None, seed: int = 0
) -> ClipFeatures:
    """Clips with (visual, audio, text) real lengths, padded to ``pad`` (default: the longest)."""
    g = torch.Generator().manual_seed(seed)
    pad = pad or tuple(max(x[i] for x in lengths) for i in range(3))
    dims = (config.visual_dim, config.audio_dim, config.text_dim)
    tensors = []
    for i, dim in enumerate(dims):
        x = torch.randn(len(lengths), pad[i], dim, generator=g)
        mask = torch.zeros(len(lengths), pad[i], dtype=torch.bool)
        for b, lens in enumerate(lengths):
            mask[b, : lens[i]] = True
        tensors += [x, mask]
    return ClipFeatures(*tensors)


def repad(clips: ClipFeatures, extra: int, garbage: float) -> ClipFeatures:
    """The same clips with ``extra`` more padded positions holding ``garbage``, masked out."""
    out = []
    for name in ("visual", "audio", "text"):
        x, mask = getattr(clips, name), getattr(clips, f"{name}_mask")
        x = torch.where(mask[..., None], x, torch.full_like(x, garbage))
        out += [
            torch.cat((x, torch.full((x.shape[0], extra, x.shape[2]), garbage)), dim=1),
            torch.cat((mask, torch.zeros(mask.shape[0], extra, dtype=torch.bool)), dim=1),
        ]
    return ClipFeatures(*out)


LENGTHS_Q = [(5, 3, 7), (2, 0, 4), (8, 6, 10)]
LENGTHS_C = [(3, 6, 2), (7, 1, 9), (1, 2, 1)]


def test_output_shapes(tiny_cfg: Config) -> None:
    model = make_student(tiny_cfg)
    c = model.config
    labels = {"rci": torch.tensor([1, 0, 1]), "reason": torch.tensor([0, -100, 3])}
    out = model(features(c, LENGTHS_Q), features(c, LENGTHS_C, seed=1), labels)
    assert {t: v.shape for t, v in out.logits.items()} == {t: (3, n) for t, n in tiny_cfg.models.tasks.items()}
    assert out.embedding.shape == (3, c.embedding_dim)
    assert out.loss is not None and torch.isfinite(out.loss)
    assert set(out.task_losses) == {"rci", "reason"}
    out.loss.backward()
    trained = [*model.head.shared.parameters(), *model.head.heads["rci"].parameters(), *model.decision.parameters()]
    assert all(p.grad is not None for p in trained)
    assert all(p.grad is None for p in model.head.heads["edit"].parameters())  # no edit labels given


def test_padding_and_garbage_under_mask_do_not_change_the_output(tiny_cfg: Config) -> None:
    model = make_student(tiny_cfg).eval()
    c = model.config
    q, cand = features(c, LENGTHS_Q), features(c, LENGTHS_C, seed=1)
    with torch.no_grad():
        ref = model(q, cand)
        for extra, garbage in ((1, 1e4), (2, float("nan")), (4, float("inf"))):
            out = model(repad(q, extra, garbage), repad(cand, extra, -garbage))
            assert torch.isfinite(out.embedding).all()
            for task in ref.logits:
                torch.testing.assert_close(out.logits[task], ref.logits[task], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(out.embedding, ref.embedding, atol=1e-5, rtol=1e-5)


def first_pair_unpadded(clips: ClipFeatures, lengths: tuple[int, int, int]) -> ClipFeatures:
    """Row 0 of ``clips`` without any padding."""
    out = []
    for name, n in zip(("visual", "audio", "text"), lengths):
        out += [getattr(clips, name)[:1, :n], getattr(clips, f"{name}_mask")[:1, :n]]
    return ClipFeatures(*out)


def test_each_pair_is_scored_independently_of_the_batch(tiny_cfg: Config) -> None:
    model = make_student(tiny_cfg).eval()
    c = model.config
    q, cand = features(c, LENGTHS_Q), features(c, LENGTHS_C, seed=1)
    alone_q, alone_c = first_pair_unpadded(q, LENGTHS_Q[0]), first_pair_unpadded(cand, LENGTHS_C[0])
    with torch.no_grad():
        torch.testing.assert_close(model(alone_q, alone_c).embedding, model(q, cand).embedding[:1], atol=1e-5, rtol=1e-5)


def test_real_tokens_beyond_the_canvas_are_refused(tiny_cfg: Config) -> None:
    model = make_student(tiny_cfg).eval()
    c = model.config
    too_long = features(c, [(c.max_visual_tokens + 1, 2, 2)])
    with pytest.raises(ValueError, match="max_visual_tokens"):
        model(too_long, features(c, [(2, 2, 2)]))


@pytest.mark.parametrize("modalities", sorted(VIEWS_BY_MODALITIES))
def test_modality_ablation(tiny_cfg: Config, modalities: str) -> None:
    model = make_student(tiny_cfg, modalities=modalities).eval()
    c = model.config
    views = VIEWS_BY_MODALITIES[modalities]
    assert model.decision.stem[0].in_channels == sum(v in ("v", "va", "vt") for v in views) * c.conv_channels + len(views)
    assert ("va" in model.bixt) == ("a" in modalities) and ("vt" in model.bixt) == ("t" in modalities)
    q, cand = features(c, LENGTHS_Q), features(c, LENGTHS_C, seed=1)
    if modalities == "v":  # the visual-only baseline needs no audio or text features
        q, cand = ClipFeatures(q.visual, q.visual_mask), ClipFeatures(cand.visual, cand.visual_mask)
    with torch.no_grad():
        assert model(q, cand).logits["rci"].shape == (3, 2)


def test_save_and_reload_give_identical_outputs(tiny_cfg: Config, tmp_path: Path) -> None:
    model = make_student(tiny_cfg)
    c = model.config
    q, cand = features(c, LENGTHS_Q), features(c, LENGTHS_C, seed=1)
    model.train()
    model(q, cand)  # update the BatchNorm running statistics so that they must be saved
    model.eval()
    path = model.save_pretrained(tmp_path / "student")
    assert (path / "model.safetensors").is_file() and (path / "config.json").is_file()
    reloaded = MatchLiteForPairClassification.from_pretrained(path).eval()
    assert reloaded.config == model.config
    with torch.no_grad():
        a, b = model(q, cand), reloaded(q, cand)
    assert all(torch.equal(a.logits[t], b.logits[t]) for t in a.logits)
    assert torch.equal(a.embedding, b.embedding)


def test_inference_form_folds_every_batchnorm_and_scores_the_same(tiny_cfg: Config, tmp_path: Path) -> None:
    model = make_student(tiny_cfg)
    c = model.config
    q, cand = features(c, LENGTHS_Q), features(c, LENGTHS_C, seed=1)
    model.train()
    for _ in range(3):  # BatchNorm running statistics away from their (0, 1) start, so folding must use them
        model(q, cand)
    model.eval()
    n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert n_bn > 0
    with torch.no_grad():
        before = model(q, cand)
    path = model.save_pretrained(tmp_path / "student")
    folded = MatchLiteForPairClassification.from_pretrained(path).for_inference()
    assert folded.inference_only and not folded.training
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert folded.for_inference() is folded  # idempotent
    with torch.no_grad():
        after = folded(q, cand)
    for task in before.logits:
        torch.testing.assert_close(after.logits[task], before.logits[task], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(after.embedding, before.embedding, rtol=1e-4, atol=1e-5)
    with pytest.raises(RuntimeError, match="folded for inference"):
        folded.train()
    with pytest.raises(RuntimeError, match="folded for inference"):
        folded.save_pretrained(tmp_path / "again")


def test_match_statistics_are_masked_and_swap_symmetric() -> None:
    from torch.nn import functional as F

    from clipguard.models.matchlite import MATCH_STATS, match_statistics

    g = torch.Generator().manual_seed(0)
    fq = F.normalize(torch.randn(2, 1, 5, 8, generator=g), dim=-1)
    fc = F.normalize(torch.randn(2, 1, 4, 8, generator=g), dim=-1)
    mq = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.float32)
    mc = torch.tensor([[1, 1, 0, 0], [0, 0, 0, 0]], dtype=torch.float32)  # row 1: candidate has no audio
    fq, fc = fq * mq[:, None, :, None], fc * mc[:, None, :, None]

    def stats(a, ma, b, mb):
        sim = (a @ b.transpose(-1, -2)) * (ma[:, :, None] * mb[:, None, :])[:, None]
        return match_statistics(sim, ma, mb, a, b)

    out = stats(fq, mq, fc, mc)
    assert out.shape == (2, 1, MATCH_STATS)
    assert torch.equal(out[1], torch.zeros(1, MATCH_STATS))  # nothing to match against
    sim = fq[0, 0, :3] @ fc[0, 0, :2].T  # the real tokens only
    assert out[0, 0, 0] == pytest.approx(float(sim.max(dim=1).values.mean()), abs=1e-6)
    assert out[0, 0, 1] == pytest.approx(float(sim.max(dim=0).values.mean()), abs=1e-6)
    assert out[0, 0, 2] == pytest.approx(float(sim.max()), abs=1e-6)
    swapped = stats(fc, mc, fq, mq)
    assert torch.allclose(swapped[..., [1, 0, 2, 3]], out, atol=1e-6)
    same = stats(fq, mq, fq, mq)
    assert torch.allclose(same[:, 0], torch.ones(2, MATCH_STATS), atol=1e-5)  # a clip matches itself
