"""Frozen-encoder feature extraction for every accepted clip (clipguard.features.extract.extract_features)."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def extract_features(
    root: Input[Dataset],
    encoder: Input[Model],
    features: Output[Dataset],
    metrics: Output[Metrics],
    shard: int = -1,
    profile: str = "local",
    overrides_json: str = "{}",
) -> str:
    """Token matrices, pooled vectors and clip embeddings of ``root``; returns the encoder version.

    ``encoder`` is a pretraining output (its ``subdir`` metadata names the version folder) or
    an imported encoder version folder. Features land in ``features/<encoder_version>/``.
    ``shard`` ``i >= 0``: only shard ``i`` of ``features.extract_shards`` (a ``ParallelFor``
    task; ``merge_features`` joins them); ``-1``: every clip.
    """
    import json
    from pathlib import Path

    from clipguard.config import load_config
    from clipguard.features import extract

    cfg = load_config(profile, json.loads(overrides_json))
    encoder_dir = Path(encoder.path, encoder.metadata.get("subdir", ""))
    part = (shard, cfg.features.extract_shards) if shard >= 0 else None
    result = extract.extract_features(Path(root.path), cfg, encoder_dir, Path(features.path), progress=False, shard=part)
    for name in ("n_in", "n_extracted", "n_skipped", "n_quarantined", "seconds"):
        metrics.log_metric(name, getattr(result, name))
    metrics.log_metric("clips_per_second", result.clips_per_second)
    features.metadata.update(
        {
            "subdir": result.features_dir.name,
            "encoder_version": result.encoder_version,
            "data_version": result.data_version,
            "shard": shard,
        }
    )
    return result.encoder_version
