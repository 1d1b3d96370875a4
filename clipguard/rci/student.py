"""Load the MatchLite student for serving, with its decision threshold and lineage, and score pairs.

:func:`load_student` accepts

* a **registry URI** — ``models:/<name>@<alias>`` (default ``cfg.rci.model_uri``,
  ``models:/clipguard-student@champion``), ``models:/<name>/<version>`` — loaded through
  ``mlflow.pyfunc.load_model(...).get_raw_model()`` (the no-pickle safetensors flavor of
  :mod:`clipguard.registry.pyfunc`) from the store :func:`clipguard.core.tracking.configure_tracking`
  selects; or
* a **local directory** in the ``save_pretrained`` layout (``config.json`` +
  ``model.safetensors``, e.g. a trained student under ``<work_dir>/rci/students/``).

Lineage and threshold:

* ``encoder_version`` (the features the student was trained on): the registered version's
  ``encoder_version`` tag, or ``features_version`` in the directory's ``training.json``.
* ``threshold`` (the decision threshold on P(reproduced)): the registered model's
  ``threshold`` metric, else ``threshold.json`` (``{"threshold": t}``) in the model
  directory, else the ``threshold`` of its evaluation report
  (``eval/metrics_<split>.json``, the validation-F1 threshold of
  :func:`clipguard.eval.evaluate.evaluate_student`); None when none is recorded.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from clipguard.config import Config
from clipguard.core.io import directory_fingerprint
from clipguard.core.tracking import configure_tracking
from clipguard.encoders.bundle import ENCODER_FILE
from clipguard.index.faiss_index import progress_bar
from clipguard.models.matchlite import MatchLiteForPairClassification
from clipguard.rci.encode import clip_features

__all__ = [
    "LoadedStudent",
    "ModelNotFoundError",
    "load_student",
    "resolve_encoder_dir",
    "score_token_pairs",
]

log = logging.getLogger(__name__)

TRAINING_FILE = "training.json"
THRESHOLD_FILE = "threshold.json"
EVAL_DIR = "eval"
THRESHOLD_METRIC = "threshold"
ENCODERS_SUBDIR = "encoders"


class ModelNotFoundError(LookupError):
    """The requested student model (URI, alias, version or directory) does not exist."""


@dataclass
class LoadedStudent:
    """A student ready to score, and what it is."""

    model: MatchLiteForPairClassification
    model_uri: str
    model_version: str
    """``<registered name>/<version>`` for registry models; the training version (or a
    content hash) for a directory"""
    encoder_version: str | None
    """the encoder (feature) version the student was trained on, when recorded"""
    threshold: float | None
    encoder_model: str | None = None
    """the registered encoder version (``<name>/<version>``) linked from the student's version"""
    data_version: str | None = None
    """the validated data the student was trained on (its lineage), when recorded"""


def _threshold_from_dir(model_dir: Path) -> float | None:
    path = model_dir / THRESHOLD_FILE
    if path.is_file():
        return float(json.loads(path.read_text())["threshold"])
    reports = sorted((model_dir / EVAL_DIR).glob("metrics_*.json"), key=lambda p: (p.name != "metrics_test.json", p.name))
    for report in reports:
        value = json.loads(report.read_text()).get("threshold")
        if value is not None:
            return float(value)
    return None


def _load_dir(model_dir: Path, uri: str) -> LoadedStudent:
    model = MatchLiteForPairClassification.from_pretrained(model_dir).for_inference()
    training = model_dir / TRAINING_FILE
    meta = json.loads(training.read_text()) if training.is_file() else {}
    version = str(meta.get("version") or "m" + directory_fingerprint(str(model_dir.resolve())))
    return LoadedStudent(
        model, uri, version, meta.get("features_version"), _threshold_from_dir(model_dir), data_version=meta.get("data_version")
    )


def _registry_version(client: Any, uri: str) -> Any | None:
    """The registered model version a ``models:/`` URI names (None for a logged-model id)."""
    from mlflow.exceptions import MlflowException

    ref = uri.removeprefix("models:/")
    try:
        if "@" in ref:
            name, alias = ref.split("@", 1)
            return client.get_model_version_by_alias(name, alias)
        if "/" in ref:
            name, version = ref.split("/", 1)
            return client.get_model_version(name, version)
    except MlflowException as e:
        raise ModelNotFoundError(f"{uri}: {e.message} (train, register and promote a student first)") from e
    return None


def _load_registry(uri: str, cfg: Config) -> LoadedStudent:
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.models import Model

    from clipguard.registry.encoders import ENCODER_MODEL_TAG
    from clipguard.registry.versions import model_metrics

    configure_tracking(cfg)
    client = mlflow.MlflowClient()
    version = _registry_version(client, uri)
    with tempfile.TemporaryDirectory(prefix="clipguard-student-") as tmp:
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp))
        except MlflowException as e:
            raise ModelNotFoundError(f"{uri}: {e.message}") from e
        raw = mlflow.pyfunc.load_model(str(local)).get_raw_model()
        data_dir = local / Model.load(str(local)).flavors["python_function"].get("data", "")
        threshold = _threshold_from_dir(data_dir)
    if not isinstance(raw, MatchLiteForPairClassification):
        raise TypeError(f"{uri} is a {type(raw).__name__}, not a MatchLite student")
    encoder_version = encoder_model = data_ver = None
    model_version = uri
    if version is not None:
        model_version = f"{version.name}/{version.version}"
        encoder_version = (version.tags or {}).get("encoder_version")
        encoder_model = (version.tags or {}).get(ENCODER_MODEL_TAG)
        data_ver = (version.tags or {}).get("data_version")
        metric = model_metrics(client, version).get(THRESHOLD_METRIC)
        threshold = float(metric) if metric is not None else threshold
    return LoadedStudent(raw.for_inference(), uri, model_version, encoder_version, threshold, encoder_model, data_ver)


def load_student(model: str | Path | None, cfg: Config) -> LoadedStudent:
    """The student at ``model`` (a ``models:/`` URI or a directory; None: ``cfg.rci.model_uri``).

    Raises:
        ModelNotFoundError: no such registered model/alias/version or directory.
        TypeError: the registered model is not a MatchLite student.
    """
    spec = str(model) if model is not None else cfg.rci.model_uri
    if spec.startswith("models:/"):
        loaded = _load_registry(spec, cfg)
    else:
        path = Path(spec)
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(f"{spec} is neither a models:/ URI nor a student directory (no config.json)")
        loaded = _load_dir(path, str(path.resolve()))
    log.info(
        "student %s (%s): encoder %s, threshold %s",
        loaded.model_uri,
        loaded.model_version,
        loaded.encoder_version,
        loaded.threshold,
    )
    return loaded


def resolve_encoder_dir(
    cfg: Config, encoder_dir: str | Path | None, *versions: str | None, encoder_model: str | None = None
) -> Path:
    """The encoder directory to encode new media with.

    ``encoder_dir`` when given, else ``<work_dir>/encoders/<version>`` for the first known
    version in ``versions`` (the student's or the index's encoder version); when that is
    not there, it is fetched from the registry (:func:`clipguard.registry.encoders.fetch_encoder`:
    the registered encoder ``encoder_model``, else the one tagged with that version).

    Raises:
        FileNotFoundError: no complete encoder directory found, locally or in the registry.
    """
    from clipguard.registry.encoders import EncoderNotRegisteredError, fetch_encoder

    if encoder_dir is not None:
        d = Path(encoder_dir)
        if not (d / ENCODER_FILE).is_file():
            raise FileNotFoundError(f"{d} is not an encoder directory (no {ENCODER_FILE})")
        return d
    known = [v for v in versions if v]
    root = Path(cfg.work_dir) / ENCODERS_SUBDIR
    for v in known:
        if (root / v / ENCODER_FILE).is_file():
            return root / v
    if not known:
        raise FileNotFoundError("no encoder directory: the model records no encoder version; pass encoder_dir")
    try:
        return fetch_encoder(known[0], root, cfg=cfg, model=encoder_model)
    except EncoderNotRegisteredError as e:
        raise FileNotFoundError(
            f"no encoder directory: encoder version {known[0]} is not under {root} and {e}; pass encoder_dir"
        ) from e


@torch.inference_mode()
def score_token_pairs(
    student: LoadedStudent,
    queries: list[dict[str, torch.Tensor]],
    candidates: list[dict[str, torch.Tensor]],
    batch_size: int,
    progress: bool = False,
) -> np.ndarray:
    """P(reproduced) (softmax of the ``rci`` logits) of each (query, candidate) token pair."""
    if len(queries) != len(candidates):
        raise ValueError(f"{len(queries)} queries for {len(candidates)} candidates")
    model, config = student.model.eval(), student.model.config
    out = []
    with progress_bar(progress and len(queries) > 0, len(queries), "score pairs") as advance:
        for start in range(0, len(queries), batch_size):
            q = clip_features(queries[start : start + batch_size], config)
            c = clip_features(candidates[start : start + batch_size], config)
            out.append(model(q, c).logits["rci"].softmax(dim=-1)[:, 1].double())
            advance(len(q.visual))
    return torch.cat(out).numpy() if out else np.zeros(0)
