"""Alertmanager-compatible drift alert with retries that never fail the run (clipguard.monitoring.alerts.send_alert)."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Metrics, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def send_alert(
    drift: Input[Artifact],
    outcome: Output[Artifact],
    metrics: Output[Metrics],
    pipeline: str = "drift-watch",
    profile: str = "local",
    overrides_json: str = "{}",
) -> bool:
    """Post the ``ClipguardDataDrift`` alert of the drift result to ``cfg.alerts.webhook_url``
    (or to ``cfg.alerts.alertmanager_url``; only logged when neither is set); returns whether a receiver accepted it.

    ``outcome`` holds the delivery outcome and the JSON payload; ``metrics`` counts it as
    ``alerts_delivered`` / ``alerts_refused`` (a refused alert is also logged as an error).
    """
    import json
    from pathlib import Path

    from clipguard.config import load_config
    from clipguard.monitoring.alerts import send_alert as send
    from clipguard.monitoring.drift import DriftResult

    cfg = load_config(profile, json.loads(overrides_json))
    result = DriftResult(**json.loads(Path(drift.path, drift.metadata.get("result_file", "result.json")).read_text()))
    sent = send(result, cfg.alerts, pipeline=pipeline)
    for name, value in sent.metrics().items():
        metrics.log_metric(name, value)
    Path(outcome.path).write_text(json.dumps(sent.to_dict(), indent=2, default=str))
    outcome.metadata.update(
        {"delivered": sent.delivered, "refused": sent.refused, "attempts": sent.attempts, "reason": sent.reason or ""}
    )
    return sent.delivered
