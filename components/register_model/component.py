"""Register a trained model version in MLflow with its metrics and lineage (clipguard.registry.log_model)."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Model

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def register_model(
    model: Input[Model],
    evaluation: Input[Artifact],
    family: str = "student",
    loader: str = "clipguard.models.matchlite:MatchLiteForPairClassification.from_pretrained",
    index_version: str = "",
    profile: str = "local",
    overrides_json: str = "{}",
) -> str:
    """Log ``model`` (``config.json`` + ``model.safetensors``) as a new version of the family's
    registered model, with the evaluation metrics attached (the gate reads them) and the
    data / encoder / model / index versions as tags; returns the registry version.

    Idempotent: unchanged content returns the existing version.
    """
    import json
    from pathlib import Path

    from clipguard.config import load_config
    from clipguard.registry import Lineage, log_model

    cfg = load_config(profile, json.loads(overrides_json))
    model_dir = Path(model.path, model.metadata.get("subdir", ""))
    report = json.loads(Path(evaluation.path, evaluation.metadata["report_file"]).read_text())
    lineage = Lineage(
        data_version=report["data_version"],
        encoder_version=report["features_version"],
        model_version=report["model_version"],
        index_version=index_version or None,
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
