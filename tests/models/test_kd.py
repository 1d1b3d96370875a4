"""Multi-task cross-entropy (eq. 1) and the distillation loss (eq. 3-6)."""

from __future__ import annotations

import pytest
import torch

from clipguard.models.kd import IGNORE_INDEX, DistillationLoss, multitask_cross_entropy

TASKS = {"rci": 2, "reason": 4}


def outputs(batch: int = 6, dim: int = 8, seed: int = 0) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    logits = {t: torch.randn(batch, n, generator=g) for t, n in TASKS.items()}
    return logits, torch.randn(batch, dim, generator=g)


def identity_kd(dim: int, **kwargs) -> DistillationLoss:
    kd = DistillationLoss(dim, dim, **kwargs)
    with torch.no_grad():
        kd.projection.weight.copy_(torch.eye(dim))
        kd.projection.bias.zero_()
    return kd


def test_multitask_ce_sums_tasks_and_skips_missing_labels() -> None:
    logits, _ = outputs()
    labels = {"rci": torch.tensor([0, 1, 0, 1, 1, 0]), "reason": torch.tensor([2, IGNORE_INDEX, 1, IGNORE_INDEX, 0, 3])}
    total, per_task = multitask_cross_entropy(logits, labels)
    keep = labels["reason"] != IGNORE_INDEX
    expected_reason = torch.nn.functional.cross_entropy(logits["reason"][keep], labels["reason"][keep])
    assert torch.allclose(per_task["reason"], expected_reason)
    assert torch.allclose(total, per_task["rci"] + per_task["reason"])
    all_missing = {"reason": torch.full((6,), IGNORE_INDEX)}
    total, _ = multitask_cross_entropy(logits, all_missing)
    assert total.item() == 0.0
    with pytest.raises(ValueError, match="unknown tasks"):
        multitask_cross_entropy(logits, {"nope": torch.zeros(6, dtype=torch.long)})


def test_distillation_is_zero_when_student_matches_teacher() -> None:
    logits, emb = outputs()
    kd = identity_kd(emb.shape[1])
    out = kd(logits, emb, {k: v.clone() for k, v in logits.items()}, emb.clone(), labels={})
    assert abs(out.emb_loss.item()) < 1e-6 and abs(out.logits_loss.item()) < 1e-6
    assert abs(out.loss.item()) < 1e-6


def test_distillation_is_positive_otherwise_and_weighted() -> None:
    s_logits, s_emb = outputs(seed=0)
    t_logits, t_emb = outputs(seed=1)
    labels = {"rci": torch.tensor([0, 1, 0, 1, 1, 0])}
    kd = identity_kd(s_emb.shape[1], lambda_emb=1.5, lambda_logits=1.5, temperature=2.0)
    out = kd(s_logits, s_emb, t_logits, t_emb, labels)
    assert out.emb_loss > 0 and out.logits_loss > 0 and out.class_loss > 0
    assert torch.allclose(out.loss, out.class_loss + 1.5 * (out.emb_loss + out.logits_loss))


@pytest.mark.parametrize(
    "mode,has_emb,has_logits", [("both", True, True), ("logits", False, True), ("embeddings", True, False), ("off", False, False)]
)
def test_modes(mode: str, has_emb: bool, has_logits: bool) -> None:
    s_logits, s_emb = outputs(seed=0)
    t_logits, t_emb = outputs(seed=1)
    out = DistillationLoss(8, 8, mode=mode)(s_logits, s_emb, t_logits, t_emb, {"rci": torch.zeros(6, dtype=torch.long)})
    assert (out.emb_loss.item() > 0) == has_emb
    assert (out.logits_loss.item() > 0) == has_logits


def test_gradients_reach_student_and_projection_only() -> None:
    s_logits, s_emb = outputs(seed=0)
    s_logits = {k: v.requires_grad_() for k, v in s_logits.items()}
    s_emb.requires_grad_()
    t_logits, t_emb = outputs(batch=6, dim=16, seed=1)
    t_logits = {k: v.requires_grad_() for k, v in t_logits.items()}
    t_emb.requires_grad_()
    kd = DistillationLoss(16, 8, logit_tasks=("rci", "reason"))
    kd(s_logits, s_emb, t_logits, t_emb, {"rci": torch.zeros(6, dtype=torch.long)}).loss.backward()
    assert s_emb.grad is not None and all(v.grad is not None for v in s_logits.values())
    assert kd.projection.weight.grad is not None and kd.projection.weight.grad.abs().sum() > 0
    assert t_emb.grad is None and all(v.grad is None for v in t_logits.values())


def test_teacher_mask_limits_distillation_to_cached_pairs() -> None:
    s_logits, s_emb = outputs(seed=0)
    t_logits, t_emb = outputs(seed=1)
    kd = identity_kd(8)
    keep = torch.tensor([True, True, False, False, False, False])
    masked = kd(s_logits, s_emb, t_logits, t_emb, {}, teacher_mask=keep)
    first_two = kd({k: v[:2] for k, v in s_logits.items()}, s_emb[:2], {k: v[:2] for k, v in t_logits.items()}, t_emb[:2], {})
    assert torch.allclose(masked.loss, first_two.loss)
    none = kd(s_logits, s_emb, t_logits, t_emb, {}, teacher_mask=torch.zeros(6, dtype=torch.bool))
    assert none.loss.item() == 0.0
