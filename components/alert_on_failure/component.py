"""The exit handler of every pipeline run: alert on-call when the run did not succeed
(clipguard.monitoring.alerts.report_run_end)."""

from kfp import dsl
from kfp.dsl import Metrics, Output, PipelineTaskFinalStatus

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def alert_on_failure(
    status: PipelineTaskFinalStatus,
    metrics: Output[Metrics],
    pipeline: str,
    profile: str = "local",
    overrides_json: str = "{}",
) -> bool:
    """Send ``ClipguardPipelineFailed`` for ``pipeline`` when the run's final ``status`` is not
    ``SUCCEEDED`` (resolve it when it is); returns whether an alert was delivered.

    Never fails: the run's own state is what KFP reports. ``metrics`` counts the alert as
    ``alerts_delivered`` / ``alerts_refused`` (a refused alert is also logged as an error).
    """
    import json

    from clipguard.monitoring.alerts import report_run_end, run_alert_config

    alerts, config_error = run_alert_config(profile, json.loads(overrides_json))
    error = "; ".join(e for e in (status.error_message or "", config_error) if e)
    sent = report_run_end(
        pipeline, status.state, alerts, run=status.pipeline_job_resource_name or "", error=error, error_code=status.error_code
    )
    print(json.dumps({"state": status.state, **sent.to_dict()}, default=str))
    for name, value in sent.metrics().items():
        metrics.log_metric(name, value)
    return sent.delivered
