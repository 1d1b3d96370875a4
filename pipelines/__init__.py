"""KFP pipelines of clipguard: DAGs over the components of ``components/``.

================  ==============================================================
pipeline          what it does
================  ==============================================================
``data_prep``     synthetic corpus → validation → validated data root
``training``      data root → encoders → features (Feast) → teacher → student →
                  index → evaluation → registry → gate → ``dsl.If`` promotion
``retraining``    the same on a data root with new days; reuse or refresh encoders
``drift_watch``   traffic window vs the training reference → ``dsl.If(drifted)``:
                  alert + nested retraining
================  ==============================================================

Every compiled pipeline runs inside a ``dsl.ExitHandler`` that alerts on-call when a run
fails (``pipelines/guard.py``).
``python -m pipelines.compile`` (``make compile``) writes ``pipelines/compiled/<name>.yaml``;
``pipelines.run_local`` runs a pipeline with ``kfp.local``; ``pipelines.schedule`` makes a
recurring run on a Kubeflow Pipelines cluster. Pipelines are imported lazily: importing
this package does not import kfp.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

PIPELINES: dict[str, str] = {
    "data_prep": "pipelines.data_prep:data_prep",
    "training": "pipelines.training:training",
    "retraining": "pipelines.retraining:retraining",
    "drift_watch": "pipelines.drift_watch:drift_watch",
}
"""Pipeline name -> ``module:function`` of its ``@dsl.pipeline``."""


def get_pipeline(name: str, *, alert_on_failure: bool = False) -> Any:
    """The ``@dsl.pipeline`` object named ``name`` (a key of :data:`PIPELINES`); with
    ``alert_on_failure``, wrapped in the exit handler that alerts when a run fails
    (:func:`pipelines.guard.with_failure_alert`: what is compiled, hence what a cluster runs)."""
    try:
        module, attr = PIPELINES[name].split(":")
    except KeyError:
        raise KeyError(f"unknown pipeline {name!r}; known: {', '.join(PIPELINES)}") from None
    pipeline = getattr(import_module(module), attr)
    if alert_on_failure:
        from pipelines.guard import with_failure_alert

        return with_failure_alert(pipeline)
    return pipeline
