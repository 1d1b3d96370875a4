"""Tiny end to end: teacher -> cache -> student (2 stages) -> evaluation JSON, PNG and MLflow; ablations."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from clipguard.eval.ablation import run_ablations
from clipguard.eval.ablation_spec import JSON_FILE, MARKDOWN_FILE
from clipguard.eval.evaluate import evaluate_student, evaluate_teacher
from clipguard.registry.gate import read_metrics_json
from clipguard.training.student import train_student
from clipguard.training.teacher_cache import cache_teacher
from tests.rci_fixtures import RCIWorld
from tests.training.conftest import rci_config


def test_train_then_evaluate_writes_metrics_png_and_mlflow(trained_teacher, rci_world: RCIWorld, mlflow_cfg) -> None:
    import mlflow

    teacher, _ = trained_teacher
    cfg = mlflow_cfg
    cache = cache_teacher(teacher.model_dir, rci_world.root, cfg, progress=False)
    student = train_student(rci_world.root, rci_world.features_dir, cfg, teacher_cache=cache.path, progress=False, track=True)
    report = evaluate_student(student.model_dir, rci_world.features_dir, rci_world.root, cfg=cfg, track=True)

    out = student.model_dir / "eval"
    stored = json.loads((out / "metrics_test.json").read_text())
    assert (out / "pr_test.png").read_bytes()[:4] == b"\x89PNG" and (out / "scores_test.parquet").is_file()
    assert stored["model"] == "student" and stored["split"] == "test" and stored["metrics"]["n_pos"] == 8
    assert {"ap", "f1", "r_at_p80", "threshold", "fpr"} <= set(stored["metrics"])
    assert {
        "all",
        "reason_audio",
        "reason_text",
        "reason_visual",
        "heldout_edit",
        "heldout_edit/rotate",
        "heldout_source",
        "hard_negatives",
    } <= set(stored["subsets"])
    assert stored["subsets"]["heldout_edit/rotate"]["n_pos"] == 2 and stored["threshold"] == report["threshold"]
    assert stored["features_version"] == "e000test" and stored["model_version"] == student.version
    # measured speed joins the metrics the register step attaches (the student gate requires it)
    for key in ("pairs_per_s", "p99_ms", "p50_ms", "fraction_of_matmul_peak"):
        assert math.isfinite(stored["metrics"][key]) and stored["metrics"][key] > 0, key
    assert stored["metrics"]["pairs_per_s"] == stored["speed"]["pairs_per_s"] and stored["speed"]["flops_per_pair"] > 0
    assert read_metrics_json(out / "metrics_test.json", "metrics")["p99_ms"] == stored["speed"]["p99_ms"]
    # the gate's reference: the best of the cheap methods on the very same val/test pairs, evaluated the same way
    from clipguard.baselines.scores import GATE_REFERENCE_METHODS, REFERENCE_METHODS
    from clipguard.eval.baselines import compare_baselines

    direct = compare_baselines(
        rci_world.root,
        cfg,
        methods=REFERENCE_METHODS,
        features_dir=rci_world.features_dir,
        out_dir=Path(cfg.work_dir) / "bl",
        progress=False,
    )["baselines"]
    assert set(stored["baseline"]["methods"]) == set(REFERENCE_METHODS)
    for method in REFERENCE_METHODS:
        assert stored["baseline"]["methods"][method]["metrics"]["ap"] == pytest.approx(direct[method]["metrics"]["ap"])
    gate = [direct[m] for m in GATE_REFERENCE_METHODS]
    assert stored["metrics"]["baseline_ap"] == pytest.approx(max(d["metrics"]["ap"] for d in gate))
    assert stored["metrics"]["baseline_r_at_p80"] == pytest.approx(max(d["metrics"]["r_at_p80"] for d in gate))
    top = stored["baseline"]["method"]
    assert stored["baseline"]["threshold"] == pytest.approx(direct[top]["threshold"]) and stored["baseline"]["n_errors"] == 0

    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    by_name = {r.info.run_name: r for r in runs}
    assert {"rci-train-student-stage1", "rci-train-student-stage2", "rci-evaluate-student"} <= set(by_name)
    stage2 = by_name["rci-train-student-stage2"]
    assert stage2.data.tags["model_version"] == student.version and "logits_loss" in stage2.data.metrics
    evaluated = by_name["rci-evaluate-student"]
    assert "test.ap" in evaluated.data.metrics and "subsets.reason_audio.ap" in evaluated.data.metrics
    assert evaluated.data.metrics["test.pairs_per_s"] > 0
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(evaluated.info.run_id, "rci")}
    assert {"rci/metrics_test.json", "rci/pr_test.png", "rci/subsets_test.md"} <= artifacts

    teacher_report = evaluate_teacher(
        teacher.model_dir, rci_world.root, cfg=cfg, out_dir=cfg.work_dir + "/teacher_eval", progress=False, track=False
    )
    assert Path(teacher_report["files"]["png"]).is_file() and teacher_report["model_version"] == teacher.version


def test_ablations_write_mean_std_tables(rci_world: RCIWorld, tmp_path: Path) -> None:
    cfg = rci_config(tmp_path / "runs", **{"models.speed.enabled": False})  # speed is not what ablations compare
    result = run_ablations(
        rci_world.root,
        rci_world.features_dir,
        tmp_path / "ab",
        cfg,
        seeds=(0, 1),
        which=("modality",),
        student_epochs=1,
        progress=False,
        track=False,
    )
    stored = json.loads((tmp_path / "ab" / JSON_FILE).read_text())
    assert (
        stored["settings"]["epochs"]["student_stage1"] == 1 and stored["settings"]["epochs"]["shrunk_from"]["student_stage1"] == 2
    )
    assert set(stored["variants"]) == {"V", "V+A", "V+T", "V+A+T"}
    ap = stored["variants"]["V+A+T"]["metrics"]["ap"]
    assert ap["n"] == 2 and len(ap["values"]) == 2 and ap["std"] >= 0
    assert ap["mean"] == pytest.approx(sum(ap["values"]) / 2)
    assert set(stored["directions"]) >= {"vat_vs_v.ap", "vat_vs_v.reason_audio.ap"}
    assert stored["directions"]["vat_vs_v.ap"]["verdict"] in ("yes", "not reliably", "no")
    assert {"heldout_edit/rotate.ap", "heldout_edit/rotate.r_at_p80", "heldout_source.ap"} <= set(
        stored["variants"]["V+A+T"]["metrics"]
    )
    markdown = (tmp_path / "ab" / MARKDOWN_FILE).read_text()
    assert "| V+A+T |" in markdown and "±" in markdown and "Input modalities" in markdown
    assert "V+A+T > V (AP): **" in markdown  # the verdict of the paper's modality direction
    assert [row["model"] for row in result["tables"]["modality"]] == ["V", "V+A", "V+T", "V+A+T"]
    with pytest.raises(ValueError, match="unknown ablations"):
        run_ablations(rci_world.root, rci_world.features_dir, tmp_path / "x", cfg, which=("nope",), track=False)
