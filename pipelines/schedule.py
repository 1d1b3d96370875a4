"""Recurring runs on a Kubeflow Pipelines cluster, from the compiled package.

    python -m pipelines.schedule drift_watch --host https://kfp.example.com \\
        --cron "0 3 * * *" --param current_root=s3://traffic/latest ...
    clipguard pipelines schedule drift_watch --host ... --cron ... --param ...

The package is ``pipelines/compiled/<pipeline>.yaml`` (``make compile``), so what is
scheduled is exactly what is committed. Parameters are checked against the package's
inputs before anything reaches the cluster.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from pipelines import PIPELINES
from pipelines.compile import COMPILED_DIR


def kfp_cron(expression: str) -> str:
    """A 6-field KFP cron (seconds first, robfig/cron) from a 5-field crontab line or a 6-field one."""
    fields = expression.split()
    if len(fields) == 5:
        return " ".join(["0", *fields])
    if len(fields) == 6:
        return " ".join(fields)
    raise ValueError(f"cron {expression!r}: expected 5 fields (crontab) or 6 (KFP, seconds first), got {len(fields)}")


def package_inputs(package: Path) -> dict[str, dict[str, Any]]:
    """The root input parameters of a compiled pipeline: name -> its spec (type, default, optional)."""
    doc = next(d for d in yaml.safe_load_all(package.read_text()) if d and "root" in d)
    return dict(doc["root"].get("inputDefinitions", {}).get("parameters", {}))


def check_params(package: Path, params: dict[str, Any]) -> None:
    """Raise ``ValueError`` for parameters the pipeline does not take, or required ones missing."""
    inputs = package_inputs(package)
    unknown = sorted(set(params) - set(inputs))
    if unknown:
        raise ValueError(f"{package.stem} has no parameter(s) {', '.join(unknown)}; it takes: {', '.join(sorted(inputs))}")
    missing = sorted(k for k, spec in inputs.items() if not spec.get("isOptional") and k not in params)
    if missing:
        raise ValueError(f"{package.stem} needs parameter(s) {', '.join(missing)}")


def create_schedule(
    host: str | None,
    pipeline: str,
    cron: str,
    params: dict[str, Any] | None = None,
    experiment: str = "clipguard",
    *,
    job_name: str | None = None,
    client: Any = None,
    package_dir: Path | str = COMPILED_DIR,
    max_concurrency: int = 1,
    no_catchup: bool = True,
    enabled: bool = True,
    pipeline_root: str | None = None,
) -> Any:
    """Create a recurring run of ``pipeline`` with ``kfp.Client().create_recurring_run``.

    Args:
        host: the KFP API endpoint (ignored when ``client`` is given).
        pipeline: a key of :data:`pipelines.PIPELINES`; its compiled YAML is uploaded.
        cron: a crontab line (5 fields, UTC on the cluster) or a 6-field KFP cron.
        params: pipeline parameters (checked against the package).
        experiment: KFP experiment, created if missing.
        job_name: default ``clipguard-<pipeline>``.
        client: a ``kfp.Client`` (or a stand-in with the same two methods, for tests).
        max_concurrency / no_catchup: one run at a time; a paused schedule does not backfill.

    Returns:
        The created recurring run (``kfp_server_api.V2beta1RecurringRun``).
    """
    if pipeline not in PIPELINES:
        raise KeyError(f"unknown pipeline {pipeline!r}; known: {', '.join(PIPELINES)}")
    package = Path(package_dir) / f"{pipeline}.yaml"
    if not package.is_file():
        raise FileNotFoundError(f"{package} not found: run `make compile` first")
    params = dict(params or {})
    check_params(package, params)
    expression = kfp_cron(cron)
    if client is None:
        import kfp

        client = kfp.Client(host=host)
    exp = client.create_experiment(name=experiment)
    return client.create_recurring_run(
        experiment_id=exp.experiment_id,
        job_name=job_name or f"clipguard-{pipeline.replace('_', '-')}",
        description=f"clipguard {pipeline}, cron {expression}",
        cron_expression=expression,
        max_concurrency=max_concurrency,
        no_catchup=no_catchup,
        params=params,
        pipeline_package_path=str(package),
        enabled=enabled,
        pipeline_root=pipeline_root,
    )


def main(argv: list[str] | None = None) -> int:
    from pipelines.run_local import parse_params

    parser = argparse.ArgumentParser(description="Schedule a clipguard pipeline on a Kubeflow Pipelines cluster.")
    parser.add_argument("pipeline", choices=sorted(PIPELINES))
    parser.add_argument("--host", required=True, help="KFP API endpoint")
    parser.add_argument("--cron", required=True, help='crontab line, e.g. "0 3 * * *"')
    parser.add_argument("--param", action="append", default=[], help="pipeline parameter key=value (repeatable)")
    parser.add_argument("--experiment", default="clipguard")
    args = parser.parse_args(argv)
    run = create_schedule(args.host, args.pipeline, args.cron, parse_params(args.param), args.experiment)
    print(getattr(run, "recurring_run_id", run))
    return 0


if __name__ == "__main__":
    sys.exit(main())
