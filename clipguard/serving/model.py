"""The served student: which model a URI names (a registry alias/version or a directory), the
registry version an alias points at now, and the loaded model with its threshold."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from clipguard.config import Config
from clipguard.core.tracking import apply_http_settings, resolve_tracking_uri, tracking_server_errors

if TYPE_CHECKING:
    from clipguard.rci.student import LoadedStudent


log = logging.getLogger(__name__)

REGISTRY_SCHEME = "models:/"


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class ModelRef:
    """Where the student comes from: a registry model (by alias or version) or a directory."""

    uri: str
    registry_name: str | None = None
    alias: str | None = None
    version: str | None = None

    @property
    def follows_alias(self) -> bool:
        """Whether the model may change while serving (a registry alias)."""
        return self.alias is not None


def parse_model_uri(uri: str) -> ModelRef:
    """``models:/<name>@<alias>``, ``models:/<name>/<version>`` or a model directory.

    Raises:
        ValueError: a malformed ``models:/`` URI.
    """
    if not uri.startswith(REGISTRY_SCHEME):
        return ModelRef(uri=uri)
    rest = uri.removeprefix(REGISTRY_SCHEME)
    if "@" in rest:
        name, alias = rest.split("@", 1)
        if name and alias and "/" not in name:
            return ModelRef(uri=uri, registry_name=name, alias=alias)
    else:
        name, _, version = rest.partition("/")
        if name and version.isdigit():
            return ModelRef(uri=uri, registry_name=name, version=version)
    raise ValueError(f"model URI {uri!r} must be models:/<name>@<alias>, models:/<name>/<version> or a directory")


def resolve_registry_version(ref: ModelRef, cfg: Config) -> str | None:
    """The registered version ``ref`` points at now (one registry call for an alias; None for a directory).

    Raises:
        ModelNotFoundError: no such registered model or alias.
    """
    if ref.registry_name is None or ref.alias is None:
        return ref.version
    import mlflow
    from mlflow.exceptions import MlflowException

    from clipguard.rci.student import ModelNotFoundError

    uri = resolve_tracking_uri(cfg)
    apply_http_settings(cfg)
    client = mlflow.MlflowClient(tracking_uri=uri)
    try:
        with tracking_server_errors(uri, cfg):
            return str(client.get_model_version_by_alias(ref.registry_name, ref.alias).version)
    except MlflowException as e:
        raise ModelNotFoundError(f"{ref.uri}: {e.message}") from e


@dataclass(frozen=True)
class ServedModel:
    """The student being served, and what it is."""

    student: LoadedStudent
    registry_version: str | None
    threshold: float
    threshold_source: str
    loaded_at: float

    @property
    def version(self) -> str:
        """``<registered name>/<version>`` for a registry model, the training version for a directory."""
        return self.student.model_version


def load_served_model(cfg: Config, ref: ModelRef, registry_version: str | None) -> ServedModel:
    """Load ``ref`` (pinned at ``registry_version`` for a registry model) with its threshold."""
    from clipguard.rci.student import load_student

    uri = f"{REGISTRY_SCHEME}{ref.registry_name}/{registry_version}" if ref.registry_name else ref.uri
    student = load_student(uri, cfg)
    if student.threshold is not None:
        threshold, source = float(student.threshold), "recorded with the model"
    else:
        threshold, source = cfg.serving.default_threshold, "serving.default_threshold"
    return ServedModel(student, registry_version, threshold, source, time.time())
