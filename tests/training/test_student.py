"""MatchLite stage 1 + stage 2: idempotence, resume, and distillation from cached teacher outputs."""

from __future__ import annotations

import pytest
import torch

from clipguard.models.kd import DistillationLoss, logits_loss
from clipguard.models.matchlite import MatchLiteForPairClassification
from clipguard.models.matchlm import MatchLMForPairClassification
from clipguard.training.student import (
    distillation_step,
    load_student,
    stage_optimizer,
    student_dataset,
    train_student,
)
from clipguard.training.teacher import load_teacher
from clipguard.training.teacher_cache import cache_teacher
from tests.rci_fixtures import RCIWorld
from tests.training.conftest import rci_config


class Interrupted(Exception):
    pass


@pytest.fixture(scope="module")
def teacher_outputs(trained_teacher, rci_world: RCIWorld, tmp_path_factory: pytest.TempPathFactory):
    result, cfg = trained_teacher
    return cache_teacher(
        result.model_dir, rci_world.root, cfg, tmp_path_factory.mktemp("tcache"), splits=("train",), progress=False
    )


@pytest.fixture
def no_teacher_forward(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(self, *args, **kwargs):
        raise AssertionError("stage 2 must not run the teacher")

    monkeypatch.setattr(MatchLMForPairClassification, "forward", forbidden)


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_two_stages_train_from_cached_teacher_outputs_and_are_idempotent(
    rci_world: RCIWorld, rci_cfg, teacher_outputs, no_teacher_forward, monkeypatch: pytest.MonkeyPatch
) -> None:
    final = train_student(
        rci_world.root, rci_world.features_dir, rci_cfg, teacher_cache=teacher_outputs.path, progress=False, track=False
    )
    assert final.stage == 2 and final.distill_mode == "both" and final.teacher_version == teacher_outputs.teacher_version
    assert final.init_dir is not None and final.init_dir != final.model_dir
    assert [r["epoch"] for r in final.history] == [1] and set(final.history[0]["val"]) == {"ap", "r_at_p80"}
    assert final.history[0]["logits_loss"] > 0 and final.history[0]["emb_loss"] > 0
    stage1, stage2 = load_student(final.init_dir), load_student(final.model_dir)
    assert any(not torch.equal(a, b) for a, b in zip(stage1.state_dict().values(), stage2.state_dict().values()))

    def no_fit(**kwargs):
        raise AssertionError("a complete version must not train again")

    monkeypatch.setattr("clipguard.training.student.fit", no_fit)
    again = train_student(
        rci_world.root, rci_world.features_dir, rci_cfg, teacher_cache=teacher_outputs.path, progress=False, track=False
    )
    assert again.skipped and again.model_dir == final.model_dir and again.history == final.history


def test_distillation_step_updates_only_student_and_projection(
    trained_teacher, rci_world: RCIWorld, rci_cfg, teacher_outputs
) -> None:
    teacher, _ = load_teacher(trained_teacher[0].model_dir)
    teacher_before = _weights(teacher)
    cached_before = {k: v.clone() for k, v in teacher_outputs.logits.items()}
    ds = student_dataset(rci_world.root, rci_world.features_dir, ("train",), rci_cfg.models.student, rci_cfg.models.tasks)
    from clipguard.models.matchlite import MatchLiteConfig

    student = MatchLiteForPairClassification(MatchLiteConfig.from_settings(rci_cfg.models))
    kd = DistillationLoss.from_settings(rci_cfg.models.distill, teacher_outputs.embedding_dim, student.config.embedding_dim)
    opt = stage_optimizer([student, kd], lr=1e-2, weight_decay=0.0)
    assert {id(p) for g in opt.param_groups for p in g["params"]} == {id(p) for p in (*student.parameters(), *kd.parameters())}
    student_before, projection_before = _weights(student), _weights(kd)

    targets = teacher_outputs.align(list(ds.pairs["pair_id"]))
    batch = ds.collate(list(range(8)))
    loss, parts = distillation_step(student, kd, batch, targets.select(batch.positions))
    opt.zero_grad()
    loss.backward()
    opt.step()

    assert parts["emb_loss"] > 0 and parts["logits_loss"] > 0
    assert any(not torch.equal(v, student.state_dict()[k]) for k, v in student_before.items())
    assert not torch.equal(projection_before["projection.weight"], kd.projection.weight)
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in teacher_before.items())
    assert all(p.grad is None for p in teacher.parameters())
    assert all(torch.equal(v, teacher_outputs.logits[k]) for k, v in cached_before.items())


def test_stage2_loss_uses_the_cached_teacher_logits(rci_world: RCIWorld, rci_cfg, teacher_outputs) -> None:
    ds = student_dataset(rci_world.root, rci_world.features_dir, ("train",), rci_cfg.models.student, rci_cfg.models.tasks)
    from clipguard.models.matchlite import MatchLiteConfig

    torch.manual_seed(0)
    student = MatchLiteForPairClassification(MatchLiteConfig.from_settings(rci_cfg.models)).eval()
    kd = DistillationLoss(teacher_outputs.embedding_dim, student.config.embedding_dim, mode="logits", lambda_logits=1.0)
    targets = teacher_outputs.align(list(ds.pairs["pair_id"]))
    batch = ds.collate([0, 3, 5])
    _, parts = distillation_step(student, kd, batch, targets.select(batch.positions))
    rows = [teacher_outputs.index[p] for p in ds.pairs["pair_id"][[0, 3, 5]]]
    with torch.no_grad():
        expected = logits_loss(student(batch.query, batch.candidate).logits["rci"], teacher_outputs.logits["rci"][rows], 2.0)
    assert parts["logits_loss"] == pytest.approx(float(expected), rel=1e-5)
    flipped = targets.select(batch.positions)
    flipped.logits["rci"] = -flipped.logits["rci"]
    assert distillation_step(student, kd, batch, flipped)[1]["logits_loss"] != pytest.approx(parts["logits_loss"])


def test_interrupted_stage1_resumes_to_identical_weights(rci_world: RCIWorld, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = rci_config(tmp_path / "runs", **{"models.distill.mode": "off"})
    reference = train_student(
        rci_world.root, rci_world.features_dir, cfg, tmp_path / "ref", stages=1, progress=False, track=False
    )

    original = MatchLiteForPairClassification.forward
    calls = {"n": 0}

    def failing(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 7:  # epoch 1: 4 steps + 1 validation batch; then mid-epoch 2
            raise Interrupted
        return original(self, *args, **kwargs)

    monkeypatch.setattr(MatchLiteForPairClassification, "forward", failing)
    with pytest.raises(Interrupted):
        train_student(rci_world.root, rci_world.features_dir, cfg, tmp_path / "s", stages=1, progress=False, track=False)
    monkeypatch.setattr(MatchLiteForPairClassification, "forward", original)
    resumed = train_student(rci_world.root, rci_world.features_dir, cfg, tmp_path / "s", stages=1, progress=False, track=False)
    assert resumed.resumed_from_epoch == 1 and resumed.epochs_run == 1 and resumed.version == reference.version
    a, b = load_student(reference.model_dir).state_dict(), load_student(resumed.model_dir).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.history[-1]["val"] == reference.history[-1]["val"]


def test_distillation_needs_a_teacher_cache_unless_off(rci_world: RCIWorld, rci_cfg) -> None:
    with pytest.raises(ValueError, match="teacher"):
        train_student(rci_world.root, rci_world.features_dir, rci_cfg, progress=False, track=False)
