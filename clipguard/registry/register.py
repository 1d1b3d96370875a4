"""Register an evaluated model with the encoders it needs: the ``register_model`` step."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from clipguard.config import Config
from clipguard.core.tracking import Lineage
from clipguard.registry.encoders import register_encoder
from clipguard.registry.versions import log_model

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

STUDENT_LOADER = "clipguard.models.matchlite:MatchLiteForPairClassification.from_pretrained"


def register_evaluated_model(
    model_dir: str | Path,
    report: str | Path,
    encoder_dir: str | Path,
    cfg: Config,
    *,
    family: str = "student",
    loader: str = STUDENT_LOADER,
    index_version: str | None = None,
) -> ModelVersion:
    """Log ``model_dir`` (``config.json`` + ``model.safetensors``) as a new version of
    ``family``, with the metrics of its evaluation ``report`` (``metrics_<split>.json``,
    which the gate reads) attached and its data / encoder / model / index versions as tags.

    ``encoder_dir`` (a pretraining output or an encoder version folder) is registered as a
    version of the ``encoder`` family and linked from the model's ``encoder_model`` tag, so
    ``rci score`` / ``rci search`` / the service find the champion's encoders. Idempotent:
    unchanged content returns the existing versions.
    """
    model_dir = Path(model_dir)
    evaluation = json.loads(Path(report).read_text())
    encoders = register_encoder(encoder_dir, cfg=cfg)
    lineage = Lineage(
        data_version=evaluation["data_version"],
        encoder_version=evaluation["features_version"],
        model_version=evaluation["model_version"],
        index_version=index_version or None,
        encoder_model=f"{encoders.name}/{encoders.version}",
    )
    return log_model(
        family,
        model_dir / "model.safetensors",
        model_dir / "config.json",
        cfg=cfg,
        loader=loader,
        metrics=evaluation["metrics"],
        lineage=lineage,
        description=f"{family} {evaluation['model_version']} on data {evaluation['data_version']}",
        run_name=f"register-{family}",
    )
