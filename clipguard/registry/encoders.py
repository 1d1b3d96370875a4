"""Encoders in the model registry: the champion carries the encoders it was trained on.

A student is trained on the features of one encoder version; to score new media a consumer
(``rci score``, ``rci search``, the service) needs that exact encoder directory
(:mod:`clipguard.encoders.bundle`). The training pipeline registers it as a version of the
``encoder`` family (:func:`register_encoder`, tag ``encoder_version``) and links it from the
student's version (tag ``encoder_model``, ``<registered name>/<version>``). A consumer that
does not have ``<work_dir>/encoders/<encoder_version>/`` fetches it from the registry
(:func:`fetch_encoder`), so ``clipguard rci score`` needs no ``--encoder-dir``.

Layout: a registered encoder is a registry model directory
(:mod:`clipguard.registry.pyfunc`): ``model.safetensors`` is the vision weights,
``config.json`` is ``encoder.json`` with the loader, and the audio / CLIP-head weights are
extra files. :func:`unpack_registered` rebuilds the encoder directory from it.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clipguard.config import Config, load_config
from clipguard.core.io import write_json
from clipguard.core.tracking import Lineage, RegistryError
from clipguard.encoders.bundle import AUDIO_WEIGHTS, ENCODER_FILE, HEADS_WEIGHTS, VISION_WEIGHTS, EncoderBundle
from clipguard.registry.pyfunc import CONFIG_FILE, WEIGHTS_FILE
from clipguard.registry.versions import UnknownVersionError, get_model_version, log_model, registered_model_name, registry_client

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

__all__ = [
    "ENCODER_FAMILY",
    "ENCODER_LOADER",
    "EncoderNotRegisteredError",
    "fetch_encoder",
    "find_encoder",
    "load_registered_encoder",
    "register_encoder",
    "unpack_registered",
]

log = logging.getLogger(__name__)

ENCODER_FAMILY = "encoder"
ENCODER_LOADER = "clipguard.registry.encoders:load_registered_encoder"
ENCODER_MODEL_TAG = "encoder_model"
"""Tag of a student version: the registered encoder version it needs (``<name>/<version>``)."""
_EXTRA_WEIGHTS = (AUDIO_WEIGHTS, HEADS_WEIGHTS)


class EncoderNotRegisteredError(RegistryError, LookupError):
    """No registered encoder has the requested encoder version."""


def registry_files(encoder_dir: str | Path) -> tuple[Path, dict[str, Any], dict[str, Path]]:
    """An encoder directory as a registered model: (vision weights, config, extra files).

    Raises:
        FileNotFoundError: ``encoder_dir`` is not a complete encoder directory.
    """
    d = Path(encoder_dir)
    meta_path = d / ENCODER_FILE
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path} not found: {d} is not a complete encoder directory")
    config = {**json.loads(meta_path.read_text()), "loader": ENCODER_LOADER}
    extra = {name: d / name for name in _EXTRA_WEIGHTS if (d / name).is_file()}
    return d / VISION_WEIGHTS, config, extra


def unpack_registered(model_dir: str | Path, dst: str | Path) -> Path:
    """Rebuild the encoder directory ``dst`` from a registered encoder model directory
    (the inverse of :func:`registry_files`); ``encoder.json`` is written last.

    Raises:
        FileNotFoundError: ``model_dir`` is not a registered encoder.
    """
    src, d = Path(model_dir), Path(dst)
    for name in (WEIGHTS_FILE, CONFIG_FILE):
        if not (src / name).is_file():
            raise FileNotFoundError(f"{src / name} not found: {src} is not a registered encoder")
    config = json.loads((src / CONFIG_FILE).read_text())
    if "architecture" not in config or "version" not in config:
        raise FileNotFoundError(f"{src / CONFIG_FILE} is not an encoder config (no version or architecture)")
    config.pop("loader", None)
    d.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src / WEIGHTS_FILE, d / VISION_WEIGHTS)
    for name in _EXTRA_WEIGHTS:
        if (src / name).is_file():
            shutil.copyfile(src / name, d / name)
    write_json(d / ENCODER_FILE, config)
    return d


def load_registered_encoder(model_dir: str) -> EncoderBundle:
    """The registry loader (``mlflow.pyfunc.load_model(...).get_raw_model()``): the bundle."""
    with tempfile.TemporaryDirectory(prefix="clipguard-encoder-") as tmp:
        return EncoderBundle.load(unpack_registered(model_dir, Path(tmp) / "encoder"))[0]


def register_encoder(encoder_dir: str | Path, *, cfg: Config | None = None) -> ModelVersion:
    """Register the encoder directory as a version of the ``encoder`` family.

    Its version tags carry ``encoder_version`` (the directory's version), ``data_version``
    and the pretraining metrics are attached. Idempotent: the same files return the
    existing version.

    Raises:
        FileNotFoundError: not a complete encoder directory.
        UnknownFamilyError: ``registry.models`` has no ``encoder`` family.
    """
    weights, config, extra = registry_files(encoder_dir)
    version = str(config["version"])
    registered = log_model(
        ENCODER_FAMILY,
        weights,
        config,
        cfg=cfg,
        loader=ENCODER_LOADER,
        metrics=config.get("metrics") or {},
        lineage=Lineage(data_version=config.get("data_version"), encoder_version=version, model_version=version),
        extra_files=extra,
        description=f"encoders {version} ({config.get('mode', '?')}, data {config.get('data_version', '?')})",
        run_name="register-encoder",
    )
    log.info("encoder %s is %s/%s", version, registered.name, registered.version)
    return registered


def find_encoder(encoder_version: str, *, cfg: Config | None = None) -> ModelVersion | None:
    """The newest registered encoder version whose ``encoder_version`` tag is ``encoder_version``."""
    cfg = cfg or load_config()
    name = registered_model_name(ENCODER_FAMILY, cfg)
    found = registry_client(cfg).search_model_versions(f"name = '{name}' and tags.encoder_version = '{encoder_version}'")
    return max(found, key=lambda v: int(v.version)) if found else None


def fetch_encoder(
    encoder_version: str,
    dst_root: str | Path,
    *,
    cfg: Config | None = None,
    model: str | None = None,
) -> Path:
    """``<dst_root>/<encoder_version>``, downloaded from the registry when it is not there yet.

    ``model`` (``<registered name>/<version>``, a student's ``encoder_model`` tag) names the
    registered version; else it is found by its ``encoder_version`` tag. The download is
    unpacked beside the destination and renamed into place, so a reader never sees half
    a directory.

    Raises:
        EncoderNotRegisteredError: no registered encoder has that version.
    """
    from clipguard.registry.champion import download_model_dir

    cfg = cfg or load_config()
    dst = Path(dst_root) / encoder_version
    if (dst / ENCODER_FILE).is_file():
        return dst
    version = None
    if model:
        name, _, number = model.rpartition("/")
        try:
            linked = get_model_version(registry_client(cfg), name, number)
        except UnknownVersionError:
            linked = None
        if linked is not None and (linked.tags or {}).get("encoder_version") == encoder_version:
            version = linked
        else:
            log.warning("%s is not a registered encoder %s; looking it up by its tag", model, encoder_version)
    if version is None:
        version = find_encoder(encoder_version, cfg=cfg)
    if version is None:
        raise EncoderNotRegisteredError(
            f"encoder version {encoder_version} is not registered "
            f"({registered_model_name(ENCODER_FAMILY, cfg)} has no version tagged encoder_version={encoder_version})"
        )
    dst.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{encoder_version}-", dir=dst.parent) as tmp:
        model_dir = download_model_dir(ENCODER_FAMILY, version.version, Path(tmp) / "download", cfg=cfg)
        staged = unpack_registered(model_dir, Path(tmp) / "encoder")
        if not (dst / ENCODER_FILE).is_file():  # another process may have won the race
            if dst.exists():
                shutil.rmtree(dst)
            staged.rename(dst)
    log.info("fetched encoder %s from %s/%s into %s", encoder_version, version.name, version.version, dst)
    return dst
