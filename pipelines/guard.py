"""Every pipeline run alerts on-call when it fails: :func:`with_failure_alert` wraps a pipeline
in a ``dsl.ExitHandler`` whose exit task is ``alert-on-failure``.

The wrapper is a pipeline with the same name, parameters and defaults; its body is the
wrapped pipeline as a sub-DAG inside the exit handler, so the exit task runs once the run
ends, whatever happened, and KFP hands it the run's final status
(``PipelineTaskFinalStatus``). This is what ``make compile`` writes and what a cluster
runs. KFP returns no pipeline outputs from inside an exit handler, so the wrapper has none:
locally, ``run_pipeline(..., alert_on_failure=False)`` runs the bare pipeline when its
outputs are needed (the training run whose outputs the drift watch takes).
"""

from __future__ import annotations

import inspect
from typing import Any

from kfp import dsl

from components.alert_on_failure.component import alert_on_failure

EXIT_TASK = "alert-on-failure"
RUN_GROUP = "pipeline-run"
"""The exit handler group: what it guards (the wrapped pipeline as one sub-DAG)."""


def with_failure_alert(pipeline: Any) -> Any:
    """The pipeline ``pipeline`` (a ``@dsl.pipeline``) wrapped so that a run that fails alerts."""
    func = pipeline.pipeline_func
    signature = inspect.signature(func)
    missing = {"profile", "overrides_json"} - set(signature.parameters)
    if missing:
        raise TypeError(f"{pipeline.name} needs parameter(s) {', '.join(sorted(missing))} for its failure alert")

    def body(*args: Any, **kwargs: Any) -> None:
        call = signature.bind(*args, **kwargs)
        call.apply_defaults()
        bound = call.arguments
        notify = alert_on_failure(pipeline=pipeline.name, profile=bound["profile"], overrides_json=bound["overrides_json"])
        notify.set_caching_options(False).set_display_name(EXIT_TASK)
        with dsl.ExitHandler(notify, name=RUN_GROUP):
            pipeline(**bound)

    body.__signature__ = signature.replace(return_annotation=inspect.Signature.empty)  # type: ignore[attr-defined]
    body.__annotations__ = {name: p.annotation for name, p in signature.parameters.items()}
    body.__name__ = func.__name__
    body.__qualname__ = func.__qualname__
    body.__doc__ = func.__doc__
    return dsl.pipeline(name=pipeline.name, description=pipeline.description)(body)
