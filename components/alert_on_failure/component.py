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

    from clipguard.config import load_config
    from clipguard.monitoring.alerts import report_run_end

    error = status.error_message or ""
    if status.error_code:
        error = f"{error} (error code {status.error_code})".strip()
    try:
        cfg = load_config(profile, json.loads(overrides_json))
    except Exception as exc:  # noqa: BLE001 - a run whose configuration is broken must still page someone
        cfg = load_config(profile)
        error = f"{error}; its configuration does not load ({exc}): alerting to the {profile!r} profile's target".lstrip("; ")
    sent = report_run_end(pipeline, status.state, cfg.alerts, run=status.pipeline_job_resource_name or "", error=error)
    print(json.dumps({"state": status.state, **sent.to_dict()}, default=str))
    metrics.log_metric("alerts_delivered", int(sent.delivered))
    metrics.log_metric("alerts_refused", int(sent.refused))
    metrics.log_metric("attempts", sent.attempts)
    return sent.delivered
