"""Stage-1 supervised fine-tuning of the MatchLM teacher (clipguard.training.teacher.train_teacher)."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def teacher_sft(
    root: Input[Dataset],
    teacher: Output[Model],
    metrics: Output[Metrics],
    seed: int = 0,
    profile: str = "local",
    overrides_json: str = "{}",
) -> str:
    """Fine-tune MatchLM (LLaVA-OneVision + Whisper; LoRA on the ``gpu`` profile) on the train
    pairs of ``root``; returns the teacher version.

    The model lands in ``teacher/<teacher_version>/``; decoded media are cached under
    ``<work_dir>/rci/media`` (shared by later runs) and the run is logged to MLflow.
    """
    import json
    from pathlib import Path

    from clipguard.config import load_config
    from clipguard.training.teacher import train_teacher

    cfg = load_config(profile, {**json.loads(overrides_json), "seed": seed})
    result = train_teacher(Path(root.path), cfg, out_dir=Path(teacher.path), seed=seed, progress=False)
    metrics.log_metric("train_pairs", result.train_pairs)
    metrics.log_metric("n_parameters", result.n_parameters)
    metrics.log_metric("epochs_run", result.epochs_run)
    metrics.log_metric("train_seconds", result.train_seconds)
    teacher.metadata.update(
        {"subdir": result.model_dir.name, "model_version": result.version, "data_version": result.data_version}
    )
    return result.version
