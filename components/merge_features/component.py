"""Join the extraction shards into one feature version (clipguard.features.extract.merge_feature_shards)."""

from typing import List

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def merge_features(
    root: Input[Dataset],
    parts: Input[List[Dataset]],  # noqa: UP006 - KFP reads typing.List
    features: Output[Dataset],
    metrics: Output[Metrics],
) -> str:
    """The ``ParallelFor`` shards of ``extract_features`` (``dsl.Collected``) as one version
    ``features/<encoder_version>/``, checked to hold every accepted clip of ``root`` once;
    returns the encoder version. Same output (and metadata) as one unsharded ``extract_features``."""
    from pathlib import Path

    from clipguard.features.extract import merge_feature_shards

    result = merge_feature_shards([Path(p.path) for p in parts], Path(features.path), root=Path(root.path))
    for name in ("n_shards", "n_in", "n_clips", "n_quarantined", "seconds"):
        metrics.log_metric(name, getattr(result, name))
    metrics.log_metric("slowest_shard_seconds", max(result.shard_seconds))
    features.metadata.update(
        {
            "subdir": result.features_dir.name,
            "encoder_version": result.encoder_version,
            "data_version": result.data_version,
            "shards": result.n_shards,
        }
    )
    return result.encoder_version
