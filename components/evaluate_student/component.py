"""Offline evaluation of the student on a held-out split (clipguard.eval.evaluate.evaluate_student)."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def evaluate_student(
    root: Input[Dataset],
    features: Input[Dataset],
    student: Input[Model],
    evaluation: Output[Artifact],
    metrics: Output[Metrics],
    split: str = "test",
    profile: str = "local",
    overrides_json: str = "{}",
) -> None:
    """AP, R@P80 and F1 (threshold chosen on val), overall and per subset, of the student on ``split``.

    ``evaluation`` holds ``metrics_<split>.json`` (the report the registry step reads),
    ``pr_<split>.png`` and ``scores_<split>.parquet``; the run is logged to MLflow.
    """
    import json
    import math
    from pathlib import Path

    from clipguard.config import load_config
    from clipguard.eval.evaluate import evaluate_student as evaluate

    cfg = load_config(profile, json.loads(overrides_json))
    model_dir = Path(student.path, student.metadata.get("subdir", ""))
    report = evaluate(model_dir, Path(features.path), Path(root.path), split=split, cfg=cfg, out_dir=Path(evaluation.path))
    for name, value in report["metrics"].items():
        if isinstance(value, (int, float)) and math.isfinite(value):
            metrics.log_metric(name, value)
    evaluation.metadata.update(
        {
            "report_file": Path(report["files"]["json"]).name,
            "split": split,
            "model_version": report["model_version"],
            "data_version": report["data_version"],
            "encoder_version": report["features_version"],
        }
    )
