"""MLflow tracking plumbing (the base layer): where runs go and runs that carry lineage.

Where: :func:`configure_tracking` points MLflow at ``config.registry.tracking_uri``, else
``$MLFLOW_TRACKING_URI``, else a SQLite store ``<work_dir>/mlflow.db`` with artifacts in
``<work_dir>/mlartifacts``, and selects the experiment (created on first use).

Runs: :func:`start_run` opens a run tagged with its :class:`Lineage` (data, encoder,
model and index versions, git commit) and the flattened configuration as params;
:func:`log_metrics`, :func:`log_json`, :func:`log_markdown_table` and :func:`log_png`
log into the active run.

Registered models (versions, aliases, :func:`~clipguard.registry.versions.log_model`) are the
registry layer's: :mod:`clipguard.registry.versions`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
import math
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from clipguard.config import Config, load_config

if TYPE_CHECKING:
    from mlflow import ActiveRun

_log = logging.getLogger(__name__)

LOCAL_DB_FILE = "mlflow.db"
"""SQLite tracking/registry database inside ``work_dir`` (local default)."""

LOCAL_ARTIFACT_DIR = "mlartifacts"
"""Artifact root inside ``work_dir`` (local default)."""

GIT_COMMIT_ENV = "CLIPGUARD_GIT_COMMIT"
"""Environment variable with the source commit, for images built without ``.git``."""

_REMOTE_SCHEMES = ("http://", "https://", "databricks")


class RegistryError(Exception):
    """Base class of the registry's errors (the CLI prints them without a traceback)."""


class RegistryUnavailableError(RegistryError):
    """The MLflow tracking server did not answer, after ``registry.http_retries`` retries."""


def apply_http_settings(cfg: Config) -> None:
    """Bound MLflow's requests to a tracking server by ``cfg.registry`` (retries, backoff,
    time-out): MLflow reads its ``MLFLOW_HTTP_REQUEST_*`` variables at every request."""
    reg = cfg.registry
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(reg.http_retries)
    os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] = str(reg.http_backoff_factor)
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(int(max(1, round(reg.http_timeout_s))))


@contextlib.contextmanager
def tracking_server_errors(uri: str, cfg: Config) -> Iterator[None]:
    """Turn MLflow's failure to reach ``uri`` (a connection or time-out error under its
    ``MlflowException``) into :class:`RegistryUnavailableError` naming the server and the tries."""
    import requests
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as e:
        cause = e.__cause__ or e.__context__
        if isinstance(cause, requests.exceptions.RequestException):
            tries = cfg.registry.http_retries + 1
            raise RegistryUnavailableError(
                f"the MLflow tracking server {uri} did not answer ({tries} tries, {cfg.registry.http_timeout_s:g} s each): "
                f"{type(cause).__name__}"
            ) from e
        raise


# --------------------------------------------------------------------------- where


@dataclasses.dataclass(frozen=True)
class TrackingSetup:
    """Where MLflow writes, as configured by :func:`configure_tracking`."""

    tracking_uri: str
    experiment: str
    experiment_id: str
    artifact_location: str | None


def resolve_tracking_uri(cfg: Config) -> str:
    """``cfg.registry.tracking_uri``, else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///<work_dir>/mlflow.db``."""
    if cfg.registry.tracking_uri:
        return cfg.registry.tracking_uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{(Path(cfg.work_dir).resolve() / LOCAL_DB_FILE).as_posix()}"


def _artifact_location(cfg: Config, tracking_uri: str) -> str | None:
    if cfg.registry.artifact_location:
        return cfg.registry.artifact_location
    if tracking_uri.startswith(_REMOTE_SCHEMES):
        return None  # the tracking server decides (e.g. proxied artifacts)
    return (Path(cfg.work_dir).resolve() / LOCAL_ARTIFACT_DIR).as_uri()


def configure_tracking(cfg: Config | None = None) -> TrackingSetup:
    """Point MLflow at the configured store and select the experiment (idempotent).

    The experiment is created on first use with ``artifact_location`` (default
    ``<work_dir>/mlartifacts`` for a local store); an existing experiment keeps its own.
    The model registry follows the tracking URI unless ``$MLFLOW_REGISTRY_URI`` is set.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    cfg = cfg or load_config()
    uri = resolve_tracking_uri(cfg)
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    exported = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    # mlflow.set_tracking_uri also exports $MLFLOW_TRACKING_URI; left there, a later configuration
    # without registry.tracking_uri (another work_dir) would resolve to this store, not its own
    if exported is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = exported
    apply_http_settings(cfg)
    client = mlflow.MlflowClient()
    name = cfg.registry.experiment
    with tracking_server_errors(uri, cfg):
        experiment = client.get_experiment_by_name(name)
    if experiment is None:
        location = _artifact_location(cfg, uri)
        try:
            client.create_experiment(name, artifact_location=location)
        except MlflowException as e:  # another process created it in between
            if e.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise RegistryError(f"could not create the MLflow experiment {name!r} at {uri}")
    mlflow.set_experiment(experiment_id=experiment.experiment_id)
    return TrackingSetup(uri, name, experiment.experiment_id, experiment.artifact_location)


# --------------------------------------------------------------------------- lineage


def git_commit() -> str | None:
    """The source commit: ``$CLIPGUARD_GIT_COMMIT``, else ``git rev-parse HEAD`` of the checkout this package runs from, else None."""
    if os.environ.get(GIT_COMMIT_ENV):
        return os.environ[GIT_COMMIT_ENV]
    try:
        out = subprocess.run(
            ["git", "-C", str(Path(__file__).resolve().parent), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


@dataclasses.dataclass(frozen=True)
class Lineage:
    """The versions an artifact was made from (DESIGN §4), recorded as run and version tags.

    ``git_commit=None`` is filled in by :func:`git_commit` when the tags are built.
    """

    data_version: str | None = None
    encoder_version: str | None = None
    model_version: str | None = None
    index_version: str | None = None
    encoder_model: str | None = None
    """the registered encoder (``<name>/<version>``) a student needs to encode new media"""
    git_commit: str | None = None

    def tags(self) -> dict[str, str]:
        """The set fields as tags (``git_commit`` detected when unset; ``mlflow.source.git.commit`` mirrors it)."""
        values = dataclasses.asdict(self)
        values["git_commit"] = self.git_commit or git_commit()
        tags = {k: str(v) for k, v in values.items() if v is not None}
        if "git_commit" in tags:
            tags["mlflow.source.git.commit"] = tags["git_commit"]
        return tags

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> Lineage:
        """The lineage recorded in run or model-version tags."""
        return cls(**{f.name: tags.get(f.name) for f in dataclasses.fields(cls)})


# --------------------------------------------------------------------------- runs


def flatten(obj: BaseModel | Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten a pydantic model or nested mapping to ``{"a.b.c": leaf}``."""
    data = obj.model_dump(mode="json") if isinstance(obj, BaseModel) else obj
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, BaseModel) or (isinstance(value, Mapping) and value):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


_METRIC_NAME_UNSAFE = re.compile(r"[^\w\-. :/]")


def metric_name(key: str) -> str:
    """``key`` as a valid MLflow metric name: ``@`` becomes ``_at_`` (``recall@5`` ->
    ``recall_at_5``), any other character MLflow refuses becomes ``_``."""
    return _METRIC_NAME_UNSAFE.sub("_", key.replace("@", "_at_"))


def numeric_leaves(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The numeric leaves of a (nested) mapping as ``{"a.b": float}`` under valid metric names
    (:func:`metric_name`); booleans become 0/1, the rest is dropped."""
    return {metric_name(k): float(v) for k, v in flatten(metrics, prefix).items() if isinstance(v, (int, float))}


def _param_value(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (list, tuple, dict)) else str(value)


@contextlib.contextmanager
def start_run(
    run_name: str,
    *,
    cfg: Config | None = None,
    lineage: Lineage | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    nested: bool = False,
) -> Iterator[ActiveRun]:
    """Open an MLflow run that records where its inputs came from.

    Tags: the lineage (:meth:`Lineage.tags`, git commit always), ``clipguard.profile``
    and ``tags``. Params: the whole configuration flattened (``pretrain.lr``, ...) plus
    ``params`` (nested mappings flattened too). A failure inside the block marks the
    run FAILED and re-raises.

    Example::

        with start_run("train-student", cfg=cfg, lineage=Lineage(data_version=dv)):
            log_metrics({"ap": ap, "r_at_p80": r})
            log_markdown_table(per_edit_rows, "tables/per_edit.md")
    """
    import mlflow

    cfg = cfg or load_config()
    configure_tracking(cfg)
    run_tags = {**(lineage or Lineage()).tags(), "clipguard.profile": cfg.profile, **(tags or {})}
    with mlflow.start_run(run_name=run_name, nested=nested, tags=run_tags) as run:
        values = {**flatten(cfg), **flatten(params or {})}
        mlflow.log_params({k: _param_value(v) for k, v in values.items()})
        yield run


def log_metrics(metrics: Mapping[str, Any], *, step: int | None = None, prefix: str = "") -> dict[str, float]:
    """Log the numeric leaves of a (nested) mapping into the active run.

    Nested keys are joined with ``.`` (``{"edit": {"crop": {"ap": 0.9}}}`` → ``edit.crop.ap``);
    booleans become 0/1; strings, ``None`` and lists are skipped, so a benchmark JSON
    can be passed as is. Returns what was logged.
    """
    import mlflow

    values = numeric_leaves(metrics, prefix)
    if values:
        mlflow.log_metrics(values, step=step)
    return values


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy arrays and scalars, torch tensors
        return value.tolist()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (Path, dt.date, dt.datetime)):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def log_json(obj: Any, artifact_file: str) -> None:
    """Log ``obj`` as a JSON artifact (numpy values, dataclasses, pydantic models, paths allowed)."""
    import mlflow

    mlflow.log_text(json.dumps(obj, indent=2, default=_json_default, allow_nan=True), artifact_file)


def markdown_table(rows: Any, *, float_format: str = "{:.4g}") -> str:
    """Render a DataFrame or a sequence of mappings as a GitHub Markdown table."""
    if hasattr(rows, "to_dict"):
        records = rows.to_dict(orient="records")
    else:
        records = [dict(r) for r in rows]
    if not records:
        return ""
    columns = list(dict.fromkeys(k for r in records for k in r))

    def cell(v: Any) -> str:
        if isinstance(v, float) and math.isfinite(v):
            return float_format.format(v)
        return "" if v is None else str(v).replace("|", "\\|")

    lines = [
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
        *("| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in records),
    ]
    return "\n".join(lines) + "\n"


def log_markdown_table(rows: Any, artifact_file: str, *, title: str | None = None) -> str:
    """Log a DataFrame / sequence of mappings as a Markdown table artifact; returns the Markdown."""
    import mlflow

    text = (f"## {title}\n\n" if title else "") + markdown_table(rows)
    mlflow.log_text(text, artifact_file)
    return text


def log_png(image: Any, artifact_file: str) -> None:
    """Log a PNG: a file path, a matplotlib figure, or an image array / PIL image."""
    import mlflow

    if isinstance(image, (str, Path)):
        with tempfile.TemporaryDirectory() as tmp:
            target = Path(tmp) / Path(artifact_file).name
            shutil.copyfile(image, target)
            parent = Path(artifact_file).parent.as_posix()
            mlflow.log_artifact(str(target), None if parent == "." else parent)
    elif hasattr(image, "savefig"):
        mlflow.log_figure(image, artifact_file)
    else:
        mlflow.log_image(image, artifact_file=artifact_file)
