"""Registered models in the MLflow registry: names, versions, aliases and logged models.

:func:`log_model` registers a safetensors model (weights + JSON config + loader, see
:mod:`clipguard.registry.pyfunc`) as a new version of its family's registered model, its
metrics attached to the logged model, its lineage as version tags. Run plumbing (where MLflow
writes, runs with lineage) is the base layer's: :mod:`clipguard.core.tracking`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import tempfile
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clipguard.config import Config, load_config
from clipguard.core.tracking import Lineage, RegistryError, configure_tracking, numeric_leaves, start_run

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion


_log = logging.getLogger(__name__)

PYFUNC_LOADER_MODULE = "clipguard.registry.pyfunc"


class UnknownFamilyError(RegistryError, ValueError):
    """A model family that the configuration does not know."""


class UnknownVersionError(RegistryError, LookupError):
    """A registered model version (or alias) that does not exist."""


def registry_client(cfg: Config | None = None) -> MlflowClient:
    """An ``MlflowClient`` on the configured store (configures tracking first)."""
    import mlflow

    configure_tracking(cfg)
    return mlflow.MlflowClient()


def registered_model_name(family: str, cfg: Config | None = None) -> str:
    """The registered model name of ``family``.

    Raises:
        UnknownFamilyError: ``family`` is not a key of ``registry.models``.
    """
    models = (cfg or load_config()).registry.models
    if family not in models:
        raise UnknownFamilyError(f"unknown model family {family!r} (known: {', '.join(models)})")
    return models[family]


def get_model_version(client: MlflowClient, name: str, version: str | int) -> ModelVersion:
    """Version ``version`` of registered model ``name``.

    Raises:
        UnknownVersionError: no such model or version.
    """
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version(name, str(version))
    except MlflowException as e:
        if e.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise UnknownVersionError(f"registered model {name!r} has no version {version!r}") from e
        raise


def model_aliases(client: MlflowClient, name: str) -> dict[str, str]:
    """``{alias: version}`` of registered model ``name`` (empty when it does not exist yet)."""
    from mlflow.exceptions import MlflowException

    try:
        return {alias: str(v) for alias, v in client.get_registered_model(name).aliases.items()}
    except MlflowException as e:
        if e.error_code == "RESOURCE_DOES_NOT_EXIST":
            return {}
        raise


# --------------------------------------------------------------------------- models


@functools.cache
def _pip_requirements() -> tuple[str, ...]:
    reqs = []
    for dist in ("mlflow", "torch", "safetensors", "numpy"):
        try:
            reqs.append(f"{dist}=={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            reqs.append(dist)
    return tuple(reqs)


def _existing_version(client: MlflowClient, name: str, digest: str) -> ModelVersion | None:
    found = client.search_model_versions(f"name = '{name}' and tags.content_digest = '{digest}'", max_results=1)
    return found[0] if found else None


def log_model(
    family: str,
    weights_path: str | Path,
    config: str | Path | Mapping[str, Any],
    *,
    cfg: Config | None = None,
    loader: str | None = None,
    metrics: Mapping[str, Any] | None = None,
    lineage: Lineage | None = None,
    extra_files: Mapping[str, str | Path] | None = None,
    description: str | None = None,
    run_name: str | None = None,
) -> ModelVersion:
    """Register a safetensors model as a new version of ``family``'s registered model.

    The model is logged with ``mlflow.pyfunc.log_model(name=family,
    loader_module="clipguard.registry.pyfunc", ...)``: its data is the directory built by
    :func:`clipguard.registry.pyfunc.build_model_dir` (no pickle). ``metrics`` are logged
    to the run and attached to the logged model (the gate reads them from there);
    ``lineage`` and the manifest's digests become version tags.

    Logs into the active run when there is one, else into a new run ``run_name``
    (default ``register-<family>``) opened with :func:`start_run`.

    Idempotent: a model whose content (weights, config, loader, extra files) matches an
    existing version of the same registered model is not registered again; that
    version is returned.

    Args:
        family: a key of ``registry.models`` (teacher, student, encoder, index).
        weights_path: the ``.safetensors`` file.
        config: the model's JSON config (a path or a mapping).
        loader: ``"module:Object.attribute"`` called with the model directory; default
            the config's ``"loader"`` key.
        metrics: evaluation/benchmark metrics of this model (nested mappings flattened).
        lineage: data/encoder/index versions the model was made from.
        extra_files: ``{file name: path}`` copied beside the weights for the loader.
        description: the version's description.

    Raises:
        UnknownFamilyError: ``family`` is not configured.
        ModelPackageError: bad weights, loader or extra files.
        ValueError: no loader given and none in the config.
    """
    import mlflow

    from clipguard.registry.pyfunc import WEIGHTS_FILE, build_model_dir

    cfg = cfg or load_config()
    name = registered_model_name(family, cfg)
    config_dict = json.loads(Path(config).read_text()) if isinstance(config, (str, Path)) else dict(config)
    loader = loader or config_dict.get("loader")
    if not loader:
        raise ValueError(f"no loader for {family!r}: pass loader= or set 'loader' in its config")
    lineage = lineage or Lineage()

    with tempfile.TemporaryDirectory(prefix="clipguard-model-") as tmp:
        model_dir = Path(tmp) / "model"
        manifest = build_model_dir(
            model_dir,
            family=family,
            weights_path=weights_path,
            config=config_dict,
            loader=loader,
            extra_files=extra_files,
        )
        client = registry_client(cfg)
        existing = _existing_version(client, name, manifest["content_digest"])
        if existing is not None:
            _log.info("%s: content unchanged, keeping version %s", name, existing.version)
            return existing

        own_run = mlflow.active_run() is None
        run_ctx = start_run(run_name or f"register-{family}", cfg=cfg, lineage=lineage) if own_run else contextlib.nullcontext()
        with run_ctx:
            info = mlflow.pyfunc.log_model(
                name=family,
                loader_module=PYFUNC_LOADER_MODULE,
                data_path=str(model_dir),
                registered_model_name=name,
                pip_requirements=list(_pip_requirements()),
                metadata={"clipguard_family": family, "loader": loader},
            )
            flat = numeric_leaves(metrics or {})
            if flat:
                mlflow.log_metrics(flat, model_id=info.model_id)

    version = str(info.registered_model_version)
    version_tags = {
        **lineage.tags(),
        "family": family,
        "loader": loader,
        "content_digest": manifest["content_digest"],
        "weights_sha256": manifest["files"][WEIGHTS_FILE],
    }
    for key, value in version_tags.items():
        client.set_model_version_tag(name, version, key, value)
    if description:
        client.update_model_version(name, version, description=description)
    return client.get_model_version(name, version)


def logged_model_id(version: ModelVersion) -> str | None:
    """The MLflow 3 logged-model id behind a version (the SQL registry leaves
    ``version.model_id`` empty; the version's source is ``models:/<model_id>``)."""
    if version.model_id:
        return version.model_id
    source = version.source or ""
    if source.startswith("models:/") and "/" not in source.removeprefix("models:/"):
        return source.removeprefix("models:/")
    return None


def model_metrics(client: MlflowClient, version: ModelVersion) -> dict[str, float]:
    """The metrics attached to a version's logged model (latest value per key; {} if none)."""
    model_id = logged_model_id(version)
    if model_id is None:
        return {}
    metrics = client.get_logged_model(model_id).metrics or []
    ordered = sorted(metrics, key=lambda m: (m.step or 0, m.timestamp or 0))
    return {m.key: float(m.value) for m in ordered}  # the last (step, time) wins
