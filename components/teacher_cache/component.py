"""The frozen teacher's logits and embeddings, computed once (clipguard.training.teacher_cache.cache_teacher)."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def teacher_cache(
    root: Input[Dataset],
    teacher: Input[Model],
    outputs: Output[Dataset],
    profile: str = "local",
    overrides_json: str = "{}",
) -> str:
    """Score the pairs of ``root`` with the teacher (eval mode) and store, per pair, every task's
    logits and the distilled pair embedding; returns the teacher version.

    The cache lands in ``outputs/<teacher_version>-<data_version>/`` (``subdir`` metadata);
    stage-2 distillation and the teacher's evaluation read it and never run MatchLM.
    """
    import json
    from pathlib import Path

    from clipguard.config import load_config
    from clipguard.training.teacher_cache import cache_teacher

    cfg = load_config(profile, json.loads(overrides_json))
    teacher_dir = Path(teacher.path, teacher.metadata.get("subdir", ""))
    cached = cache_teacher(teacher_dir, Path(root.path), cfg, out_dir=Path(outputs.path), progress=False)
    outputs.metadata.update(
        {
            "subdir": cached.path.name,
            "teacher_version": cached.teacher_version,
            "data_version": cached.data_version,
            "pairs": len(cached.pair_ids),
        }
    )
    return cached.teacher_version
