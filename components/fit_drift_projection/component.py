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
    from clipguard.monitoring.drift import fit_reference_projection

    cfg = load_config(profile, json.loads(overrides_json))
    fitted = fit_reference_projection(reference.path, cfg.drift, root.path if root is not None else None)
    fitted.save(projection.path)
    projection.metadata.update(
        {
            "n_fit": fitted.n_fit,
            "dims": cfg.drift.projection_dims,
            "encoder_version": reference.metadata.get("encoder_version", ""),
            "data_version": reference.metadata.get("data_version", ""),
        }
    )
