"""Register a trained model version in MLflow with its metrics and lineage (clipguard.registry.log_model),
and the encoders it was trained on (clipguard.registry.encoders.register_encoder)."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Model

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def register_model(
    model: Input[Model],
    evaluation: Input[Artifact],
    encoder: Input[Model],
    family: str = "student",
    loader: str = "clipguard.models.matchlite:MatchLiteForPairClassification.from_pretrained",
    index_version: str = "",
    profile: str = "local",
    overrides_json: str = "{}",
) -> str:
    """Log ``model`` (``config.json`` + ``model.safetensors``) as a new version of the family's
    registered model, with the evaluation metrics attached (the gate reads them) and the
    data / encoder / model / index versions as tags; returns the registry version.

    ``encoder`` (a pretraining output or an imported encoder version folder) is registered
    as a version of the ``encoder`` family and linked from the model's ``encoder_model``
    tag, so ``rci score`` / ``rci search`` / the service find the encoders of the champion.

    Idempotent: unchanged content returns the existing version.
    """
    import json
    from pathlib import Path

    from clipguard.config import load_config
    from clipguard.registry.register import register_evaluated_model

    version = register_evaluated_model(
        Path(model.path, model.metadata.get("subdir", "")),
        Path(evaluation.path, evaluation.metadata["report_file"]),
        Path(encoder.path, encoder.metadata.get("subdir", "")),
        load_config(profile, json.loads(overrides_json)),
        family=family,
        loader=loader,
        index_version=index_version or None,
    )
    return str(version.version)
