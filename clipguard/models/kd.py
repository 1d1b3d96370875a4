"""Training objectives of MatchLM2Lite: multi-task CE (eq. 1) and distillation (§3.4.2, eq. 3-6).

Stage 1 trains teacher and student separately with :func:`multitask_cross_entropy`.
Stage 2 freezes the teacher; its outputs on the training pairs are computed once and cached,
and :class:`DistillationLoss` takes those cached tensors as inputs (they are detached: no
gradient ever reaches them) together with the student's outputs::

    L_emb    = 1 - cos(z_s, P(z_t))                           (eq. 3, P: learnable projection)
    L_logits = KL(softmax(P_t / T) || softmax(P_s / T)) * T^2 (eq. 4, per distilled task)
    L_total  = L_class + lambda_emb * L_emb + lambda_logits * L_logits   (eq. 5-6)

The paper uses lambda_emb = lambda_logits = lambda = 1.5; ``mode`` turns terms off for the
Table 5/6 ablation ("both", "logits", "embeddings", "off"). The T^2 factor keeps the
gradient scale of the soft targets independent of the temperature (Hinton et al. 2015).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from clipguard.config import DistillConfig

IGNORE_INDEX = -100
"""Label value of a pair that has no label for a task (e.g. a missing sub-label)."""

KDMode = Literal["both", "logits", "embeddings", "off"]


def multitask_cross_entropy(
    logits: dict[str, torch.Tensor], labels: dict[str, torch.Tensor], ignore_index: int = IGNORE_INDEX
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Eq. 1: the sum over tasks of the cross-entropy, skipping ``ignore_index`` labels.

    Tasks absent from ``labels`` and tasks whose labels are all ignored contribute 0.
    Returns the total and the per-task losses.
    """
    unknown = set(labels) - set(logits)
    if unknown:
        raise ValueError(f"labels for unknown tasks: {sorted(unknown)} (model tasks: {sorted(logits)})")
    any_logits = next(iter(logits.values()))
    total = any_logits.new_zeros(())
    per_task: dict[str, torch.Tensor] = {}
    for task, target in labels.items():
        target = target.to(device=logits[task].device, dtype=torch.long)
        if (target != ignore_index).any():
            per_task[task] = F.cross_entropy(logits[task], target, ignore_index=ignore_index)
        else:
            per_task[task] = logits[task].sum() * 0.0
        total = total + per_task[task]
    return total, per_task


def embedding_loss(student: torch.Tensor, teacher_projected: torch.Tensor) -> torch.Tensor:
    """Eq. 3: mean over the batch of ``1 - cos(z_s, P(z_t))``."""
    return (1.0 - F.cosine_similarity(student, teacher_projected, dim=-1)).mean()


def logits_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """Eq. 4: ``KL(softmax(P_t/T) || softmax(P_s/T)) * T^2``, averaged over the batch."""
    log_p_student = F.log_softmax(student / temperature, dim=-1)
    log_p_teacher = F.log_softmax(teacher / temperature, dim=-1)
    kl = F.kl_div(log_p_student, log_p_teacher, log_target=True, reduction="batchmean")
    return kl * temperature**2


@dataclass
class DistillationOutput:
    """The total stage-2 loss and its parts (for logging)."""

    loss: torch.Tensor
    class_loss: torch.Tensor
    emb_loss: torch.Tensor
    logits_loss: torch.Tensor
    task_losses: dict[str, torch.Tensor]


class DistillationLoss(nn.Module):
    """Stage-2 objective of MatchLite (eq. 6) with the learnable teacher projection ``P``.

    ``P`` is a linear map from the teacher's embedding size (the LLM hidden size) to the
    student's (``z_s``); it is trained with the student, so give this module's parameters
    to the student's optimizer.
    """

    def __init__(
        self,
        teacher_dim: int,
        student_dim: int,
        mode: KDMode = "both",
        lambda_emb: float = 1.5,
        lambda_logits: float = 1.5,
        temperature: float = 2.0,
        logit_tasks: tuple[str, ...] = ("rci",),
    ) -> None:
        super().__init__()
        if mode not in ("both", "logits", "embeddings", "off"):
            raise ValueError(f"unknown distillation mode {mode!r}")
        if temperature <= 0:
            raise ValueError("temperature must be > 0")
        self.mode = mode
        self.lambda_emb = lambda_emb
        self.lambda_logits = lambda_logits
        self.temperature = temperature
        self.logit_tasks = tuple(logit_tasks)
        self.projection = nn.Linear(teacher_dim, student_dim)

    @classmethod
    def from_settings(cls, cfg: DistillConfig, teacher_dim: int, student_dim: int) -> DistillationLoss:
        return cls(
            teacher_dim,
            student_dim,
            mode=cfg.mode,
            lambda_emb=cfg.lambda_emb,
            lambda_logits=cfg.lambda_logits,
            temperature=cfg.temperature,
            logit_tasks=cfg.logit_tasks,
        )

    def forward(
        self,
        student_logits: dict[str, torch.Tensor],
        student_embedding: torch.Tensor,
        teacher_logits: dict[str, torch.Tensor],
        teacher_embedding: torch.Tensor,
        labels: dict[str, torch.Tensor],
        teacher_mask: torch.Tensor | None = None,
    ) -> DistillationOutput:
        """Compute eq. 6 for a batch.

        Args:
            student_logits, student_embedding: the student's outputs (task -> (B, C); (B, Ds)).
            teacher_logits, teacher_embedding: the cached teacher outputs for the same pairs
                (task -> (B, C); (B, Dt)); detached here.
            labels: task -> (B,) ground truth (``-100`` = missing) for ``L_class``.
            teacher_mask: optional (B,) bool, False for pairs without cached teacher outputs
                (they get only ``L_class``).
        """
        class_loss, per_task = multitask_cross_entropy(student_logits, labels)
        zero = student_embedding.new_zeros(())
        keep = (
            torch.ones(student_embedding.shape[0], dtype=torch.bool, device=student_embedding.device)
            if teacher_mask is None
            else teacher_mask.to(student_embedding.device).bool()
        )
        distill = self.mode != "off" and bool(keep.any())
        emb = zero
        if distill and self.mode in ("both", "embeddings"):
            projected = self.projection(teacher_embedding.detach().to(student_embedding.dtype))
            emb = embedding_loss(student_embedding[keep], projected[keep])
        kl = zero
        if distill and self.mode in ("both", "logits"):
            for task in self.logit_tasks:
                teacher = teacher_logits[task].detach().to(student_logits[task].dtype)
                kl = kl + logits_loss(student_logits[task][keep], teacher[keep], self.temperature)
        total = class_loss + self.lambda_emb * emb + self.lambda_logits * kl
        return DistillationOutput(total, class_loss, emb, kl, per_task)
