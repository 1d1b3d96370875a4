"""MatchLite student: supervised stage 1, then knowledge distillation (clipguard.training.student.train_student)."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def student_distill(
    root: Input[Dataset],
    features: Input[Dataset],
    teacher_outputs: Input[Dataset],
    student: Output[Model],
    metrics: Output[Metrics],
    seed: int = 0,
    profile: str = "local",
    overrides_json: str = "{}",
) -> str:
    """Train MatchLite on the cached features (stage 1), then distil the teacher's cached
    logits and embeddings into it (stage 2, ``cfg.models.distill``); returns the student version.

    Both stages land in ``student/<version>/``; ``subdir`` names the final (stage-2) model.
    """
    import json
    from pathlib import Path

    from clipguard.config import load_config
    from clipguard.training.student import train_student

    cfg = load_config(profile, {**json.loads(overrides_json), "seed": seed})
    cache_dir = Path(teacher_outputs.path, teacher_outputs.metadata.get("subdir", ""))
    result = train_student(
        Path(root.path), Path(features.path), cfg, out_dir=Path(student.path), teacher_cache=cache_dir, seed=seed, progress=False
    )
    for name, value in result.val_metrics.items():
        if isinstance(value, (int, float)):
            metrics.log_metric(f"val_{name}", value)
    metrics.log_metric("train_pairs", result.train_pairs)
    metrics.log_metric("train_seconds", result.train_seconds)
    student.metadata.update(
        {
            "subdir": result.model_dir.name,
            "model_version": result.version,
            "stage": result.stage,
            "data_version": result.data_version,
            "encoder_version": result.features_version,
            "teacher_version": result.teacher_version or "",
        }
    )
    return result.version
