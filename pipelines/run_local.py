"""Run a pipeline on this machine with ``kfp.local`` (``SubprocessRunner(use_venv=False)``).

Every component runs as a subprocess of the current Python (the clipguard virtualenv), so
nothing is installed and no container is needed::

    python -m pipelines.run_local data_prep --param clips=40 --param days=2
    clipguard pipelines run training --param data_root=data/corpus

Task outputs land under ``--pipeline-root`` (default ``<work_dir>/kfp``). The config's
``work_dir`` (MLflow database, Feast registry/online store, media caches) is made absolute
and passed to every component through ``overrides_json``, so a run started from any
directory (e.g. cron) uses the same stores.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import yaml

from pipelines import PIPELINES, get_pipeline

LOCAL_PATH_SUFFIXES = ("_root", "_uri")
"""Pipeline parameters that name data: a local relative path is resolved against the current directory."""


def local_params(params: dict[str, Any], work_dir: str | Path | None = None) -> dict[str, Any]:
    """``params`` with ``overrides_json`` carrying an absolute ``work_dir``, and local paths absolute.

    ``work_dir`` wins; else the one ``overrides_json`` or the profile sets, resolved
    against the current directory. Parameters named ``*_root`` / ``*_uri`` that hold a local
    path (no ``scheme://``) are made absolute too, so importers find them from any task.
    """
    from clipguard.config import load_config

    out = dict(params)
    for key, value in out.items():
        if key.endswith(LOCAL_PATH_SUFFIXES) and isinstance(value, str) and value and "://" not in value:
            out[key] = str(Path(value).expanduser().absolute())
    overrides = json.loads(out.get("overrides_json") or "{}")
    if work_dir is not None:
        overrides["work_dir"] = str(work_dir)
    cfg = load_config(out.get("profile"), overrides)
    overrides["work_dir"] = str(Path(cfg.work_dir).expanduser().absolute())
    out["overrides_json"] = json.dumps(overrides, sort_keys=True)
    return out


def run_pipeline(
    name: str,
    params: dict[str, Any] | None = None,
    *,
    pipeline_root: str | Path | None = None,
    work_dir: str | Path | None = None,
    enable_caching: bool = False,
    alert_on_failure: bool = False,
) -> Any:
    """Run pipeline ``name`` locally and return the pipeline task (``.outputs`` holds its outputs).

    Raises ``RuntimeError`` (from kfp) when a task fails; the failing task's log is printed
    above it. ``alert_on_failure`` runs it as compiled, inside the exit handler that alerts
    on-call (``cfg.alerts``) when the run fails; the run then has no outputs (see
    ``pipelines/guard.py``).
    """
    from kfp import local

    pipeline = get_pipeline(name, alert_on_failure=alert_on_failure)
    args = local_params(params or {}, work_dir)
    root = Path(pipeline_root) if pipeline_root else Path(json.loads(args["overrides_json"])["work_dir"]) / "kfp"
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(root.absolute()),
        enable_caching=enable_caching,
    )
    with warnings.catch_warnings():
        # kfp warns that our base image is not a python image: the subprocess runner ignores images.
        warnings.filterwarnings("ignore", message=".*non-Python base image.*", category=RuntimeWarning)
        # ... and the pod resources of pipelines/resources.py (for a cluster) have no effect here
        warnings.filterwarnings("ignore", message=".*have no effect in the current local runner.*", category=UserWarning)
        return pipeline(**args)


def describe_outputs(task: Any) -> dict[str, str]:
    """A pipeline run's outputs as text: artifact paths (a versioned folder's version folder, e.g.
    ``encoder/<encoder_version>``, which is what ``drift_watch``'s ``encoder_uri`` takes) or values."""
    out: dict[str, str] = {}
    for key, value in (getattr(task, "outputs", None) or {}).items():
        if hasattr(value, "path"):
            subdir = (value.metadata or {}).get("subdir", "")
            out[key] = str(Path(value.path, subdir)) if key == "encoder" and subdir else value.path
        else:
            out[key] = str(value)
    return out


def parse_params(items: list[str]) -> dict[str, Any]:
    """``key=value`` strings to a dict; numbers and booleans are typed (YAML scalars), anything
    else, JSON objects included (``overrides_json={"seed": 1}``), stays a string."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--param expects key=value, got {item!r}")
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            parsed = value
        out[key.strip()] = parsed if isinstance(parsed, (bool, int, float)) else value
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run a clipguard pipeline locally with kfp.local.")
    parser.add_argument("name", choices=sorted(PIPELINES))
    parser.add_argument("--param", action="append", default=[], help="pipeline parameter key=value (repeatable)")
    parser.add_argument("--pipeline-root", type=Path, default=None, help="task outputs (default <work_dir>/kfp)")
    parser.add_argument("--work-dir", type=Path, default=None, help="MLflow/Feast/cache root (default: the config's)")
    parser.add_argument("--cache", action="store_true", help="reuse outputs of identical earlier tasks")
    parser.add_argument(
        "--alert-on-failure", action="store_true", help="run inside the exit handler that alerts when the run fails (no outputs)"
    )
    args = parser.parse_args(argv)
    task = run_pipeline(
        args.name,
        parse_params(args.param),
        pipeline_root=args.pipeline_root,
        work_dir=args.work_dir,
        enable_caching=args.cache,
        alert_on_failure=args.alert_on_failure,
    )
    for key, value in describe_outputs(task).items():
        print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
