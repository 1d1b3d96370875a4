"""Self-supervised encoder pretraining, MoCo or MoCo + CLIP (clipguard.encoders.pretrain.pretrain_encoders)."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def pretrain_encoders(
    root: Input[Dataset],
    encoder: Output[Model],
    metrics: Output[Metrics],
    mode: str = "moco_clip",
    seed: int = 0,
    profile: str = "local",
    overrides_json: str = "{}",
) -> str:
    """Pretrain the clip encoder on the train split of ``root``; returns the encoder version.

    The encoder bundle (vision + frozen audio/text encoders) lands in
    ``encoder/<encoder_version>/``; ``encoder.metadata["subdir"]`` names it.
    """
    import json
    from pathlib import Path

    from clipguard.config import load_config
    from clipguard.encoders import pretrain

    cfg = load_config(profile, {**json.loads(overrides_json), "seed": seed})
    result = pretrain.pretrain_encoders(Path(root.path), cfg, mode=mode, out_dir=Path(encoder.path), seed=seed, progress=False)
    for name, value in result.metrics.items():
        metrics.log_metric(name, value)
    metrics.log_metric("train_clips", result.train_clips)
    metrics.log_metric("train_seconds", result.train_seconds)
    encoder.metadata.update(
        {
            "subdir": result.encoder_dir.name,
            "encoder_version": result.encoder_version,
            "data_version": result.data_version,
            "mode": result.mode,
            "seed": result.seed,
        }
    )
    return result.encoder_version
