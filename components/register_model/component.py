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
    from clipguard.registry import Lineage, log_model
    from clipguard.registry.encoders import register_encoder

    cfg = load_config(profile, json.loads(overrides_json))
    model_dir = Path(model.path, model.metadata.get("subdir", ""))
    report = json.loads(Path(evaluation.path, evaluation.metadata["report_file"]).read_text())
    encoders = register_encoder(Path(encoder.path, encoder.metadata.get("subdir", "")), cfg=cfg)
    lineage = Lineage(
        data_version=report["data_version"],
        encoder_version=report["features_version"],
        model_version=report["model_version"],
        index_version=index_version or None,
        encoder_model=f"{encoders.name}/{encoders.version}",
    )
    version = log_model(
        family,
        model_dir / "model.safetensors",
        model_dir / "config.json",
        cfg=cfg,
        loader=loader,
        metrics=report["metrics"],
        lineage=lineage,
        description=f"{family} {report['model_version']} on data {report['data_version']}",
        run_name=f"register-{family}",
    )
    return str(version.version)
