"""Fit the drift watch's PCA projection on the training reference (clipguard.monitoring.drift.fit_projection)."""

from typing import Optional

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def fit_drift_projection(
    reference: Input[Dataset],
    projection: Output[Model],
    root: Optional[Input[Dataset]] = None,
    profile: str = "local",
    overrides_json: str = "{}",
) -> None:
    """Fit ``cfg.drift.projection_dims`` principal components per embedding column of the
    reference features and save them (``.npz``, no pickle): every drift report projects
    with the same components, so days stay comparable. With ``root`` (the validated root the
    features were extracted from), only its ``cfg.drift.reference_splits`` clips are used,
    as ``drift_check`` does with its ``reference_root``.
    """
    import json

    from clipguard.config import load_config
    from clipguard.features.store_format import read_clip_features
    from clipguard.monitoring.drift import fit_projection, select_reference, with_manifest

    cfg = load_config(profile, json.loads(overrides_json))
    reference_df = read_clip_features(reference.path)
    if root is not None:
        reference_df = select_reference(with_manifest(reference_df, root.path), cfg.drift.reference_splits)
    fitted = fit_projection(reference_df, dims=cfg.drift.projection_dims)
    fitted.save(projection.path)
    projection.metadata.update(
        {
            "n_fit": fitted.n_fit,
            "dims": cfg.drift.projection_dims,
            "encoder_version": reference.metadata.get("encoder_version", ""),
            "data_version": reference.metadata.get("data_version", ""),
        }
    )
