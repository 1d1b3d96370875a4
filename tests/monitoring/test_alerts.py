"""Alert delivery: Alertmanager v4 payload, retries with backoff, dead receivers never raise."""

from __future__ import annotations

import logging
import re
import socket
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from clipguard.config import AlertConfig
from clipguard.monitoring.alerts import (
    DRIFT_ALERTNAME,
    Alert,
    alertmanager_payload,
    drift_alert,
    fingerprint,
    local_receiver,
    received_alerts,
    send_alert,
)
from clipguard.monitoring.drift import DriftResult
from tests.monitoring.conftest import Receiver
from tests.services import wait_for

FAST = {"backoff_base_s": 0.02, "backoff_max_s": 0.05, "timeout_s": 1.0, "max_total_s": 5.0}


@pytest.fixture
def result() -> DriftResult:
    return DriftResult(
        drifted=True,
        share_drifted=0.5,
        drifted_columns=["hashtag_count", "emb_resid"],
        n_reference=800,
        n_current=250,
        html_path="/runs/drift/drift_2026-11-03.html",
        json_path="/runs/drift/drift_2026-11-03.json",
        per_column={
            "hashtag_count": {"group": "text_stats", "method": "psi", "threshold": 0.1, "score": 2.8, "drifted": True},
            "emb_resid": {"group": "visual", "method": "wasserstein", "threshold": 0.2, "score": 1.3, "drifted": True},
            "score": {"group": "score", "method": "wasserstein", "threshold": 0.2, "score": 0.05, "drifted": False},
            "audio_rms": {"group": "audio", "method": "wasserstein", "threshold": 0.2, "score": 0.1, "drifted": False},
        },
        drift_share_threshold=0.3,
        period="2026-11-03",
    )


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def test_payload_is_alertmanager_v4(receiver: Receiver, result: DriftResult) -> None:
    cfg = AlertConfig(webhook_url=receiver.url, receiver="trust-safety", labels={"env": "test"}, **FAST)
    outcome = send_alert(result, cfg, pipeline="drift-watch")
    assert outcome.delivered and outcome.attempts == 1 and outcome.status_code == 200
    (body,) = receiver.requests
    assert receiver.headers[0]["Content-Type"] == "application/json"
    assert body["version"] == "4"
    assert body["status"] == "firing"
    assert body["receiver"] == "trust-safety"
    assert body["groupLabels"] == {"alertname": DRIFT_ALERTNAME}
    assert body["groupKey"] == '{}:{alertname="ClipguardDataDrift"}'
    assert body["truncatedAlerts"] == 0
    assert "externalURL" in body
    assert body["commonLabels"] == {
        "alertname": DRIFT_ALERTNAME,
        "severity": "warning",
        "pipeline": "drift-watch",
        "day": "2026-11-03",
        "env": "test",
    }
    annotations = body["commonAnnotations"]
    assert "2026-11-03" in annotations["summary"]
    assert "share 0.50" in annotations["description"] and "threshold 0.30" in annotations["description"]
    assert annotations["description"].index("hashtag_count") < annotations["description"].index("emb_resid")
    assert annotations["report_path"] == result.html_path
    assert annotations["report_json"] == result.json_path
    (alert,) = body["alerts"]
    assert set(alert) == {"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}
    assert alert["status"] == "firing"
    assert alert["labels"] == body["commonLabels"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", alert["startsAt"])
    assert datetime.fromisoformat(alert["startsAt"]).tzinfo is not None
    assert alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert alert["fingerprint"] == fingerprint(alert["labels"]) == outcome.fingerprint
    assert outcome.payload == body


def test_fingerprint_is_stable_per_label_set() -> None:
    a = fingerprint({"alertname": "X", "day": "2026-11-03"})
    assert re.fullmatch(r"[0-9a-f]{16}", a)
    assert a == fingerprint({"day": "2026-11-03", "alertname": "X"})  # order does not matter
    assert a != fingerprint({"alertname": "X", "day": "2026-11-04"})
    assert fingerprint({}) == "cbf29ce484222325"  # FNV-1a 64 offset basis, as Prometheus


def test_generic_alert_gets_config_labels() -> None:
    cfg = AlertConfig(severity="critical", labels={"team": "tns"})
    alert = Alert(
        labels={"alertname": "ClipguardPipelineFailed", "pipeline": "training"},
        annotations={"summary": "training failed"},
        starts_at=datetime(2026, 11, 3, 6, 0, tzinfo=timezone.utc),
    )
    payload = alertmanager_payload([alert], cfg)
    assert payload["alerts"][0]["labels"] == {
        "alertname": "ClipguardPipelineFailed",
        "pipeline": "training",
        "severity": "critical",
        "team": "tns",
    }
    assert payload["alerts"][0]["startsAt"] == "2026-11-03T06:00:00.000Z"
    with pytest.raises(ValueError, match="alertname"):
        alertmanager_payload([Alert(labels={}, annotations={})], cfg)


def test_retries_with_backoff_then_delivers(receiver: Receiver, result: DriftResult) -> None:
    receiver.statuses = [503, 503]
    cfg = AlertConfig(webhook_url=receiver.url, retries=3, **FAST)
    start = time.monotonic()
    outcome = send_alert(result, cfg)
    assert outcome.delivered
    assert outcome.attempts == 3
    assert len(receiver.requests) == 3
    assert receiver.requests[0] == receiver.requests[2]  # the same alert each time
    # equal jitter: at least half of 0.02 s, then half of 0.04 s
    assert time.monotonic() - start >= 0.01 + 0.02


def test_429_is_retried(receiver: Receiver, result: DriftResult) -> None:
    receiver.statuses = [429]
    outcome = send_alert(result, AlertConfig(webhook_url=receiver.url, **FAST))
    assert outcome.delivered and outcome.attempts == 2


def test_400_is_not_retried(receiver: Receiver, result: DriftResult, caplog: pytest.LogCaptureFixture) -> None:
    receiver.statuses = [400]
    with caplog.at_level(logging.WARNING, logger="clipguard.monitoring.alerts"):
        outcome = send_alert(result, AlertConfig(webhook_url=receiver.url, retries=3, **FAST))
    assert not outcome.delivered
    assert outcome.attempts == 1 and len(receiver.requests) == 1
    assert outcome.status_code == 400 and "HTTP 400" in (outcome.error or "")
    assert "NOT delivered" in caplog.text


def test_dead_webhook_gives_up_quickly(result: DriftResult, caplog: pytest.LogCaptureFixture) -> None:
    cfg = AlertConfig(webhook_url=closed_port_url(), retries=2, **FAST)
    start = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="clipguard.monitoring.alerts"):
        outcome = send_alert(result, cfg)
    assert time.monotonic() - start < 3.0
    assert not outcome.delivered and outcome.refused and outcome.to_dict()["refused"]
    assert outcome.attempts == 3
    assert outcome.status_code is None
    assert "ConnectionError" in (outcome.error or "")
    assert "NOT delivered" in caplog.text and "/hook" not in caplog.text  # the URL path is not logged


def test_slow_receiver_is_bounded_by_max_total(receiver: Receiver, result: DriftResult) -> None:
    receiver.delay_s = 1.0
    cfg = AlertConfig(
        webhook_url=receiver.url, timeout_s=0.2, retries=10, backoff_base_s=0.01, backoff_max_s=0.01, max_total_s=0.7
    )
    start = time.monotonic()
    outcome = send_alert(result, cfg)
    elapsed = time.monotonic() - start
    assert not outcome.delivered
    assert 2 <= outcome.attempts <= 4
    assert "Timeout" in (outcome.error or "")
    assert elapsed < 1.5


def test_no_webhook_only_logs(result: DriftResult, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="clipguard.monitoring.alerts"):
        outcome = send_alert(result, AlertConfig())
    assert not outcome.delivered
    assert outcome.attempts == 0
    assert outcome.reason == "no alert target configured"
    assert outcome.payload["alerts"][0]["labels"]["alertname"] == DRIFT_ALERTNAME
    assert "no alert target configured" in caplog.text and "Data drift on 2026-11-03" in caplog.text


def test_invalid_url_never_raises(result: DriftResult) -> None:
    outcome = send_alert(result, AlertConfig(webhook_url="not a url", **FAST))
    assert not outcome.delivered
    assert outcome.attempts == 1  # a wrong URL is not retried
    assert "InvalidURL" in (outcome.error or "")


def test_drift_alert_without_period_uses_today(result: DriftResult) -> None:
    from dataclasses import replace

    now = datetime(2026, 11, 5, 23, 30, tzinfo=timezone.utc)
    alert = drift_alert(replace(result, period=None), AlertConfig(), now=now, top_k=1)
    assert alert.labels["day"] == "2026-11-05"
    assert "and 1 more" in alert.annotations["description"]


def test_local_receiver_keeps_each_delivered_alert_as_a_json_line(tmp_path, result: DriftResult) -> None:
    import json

    log = tmp_path / "inbox" / "alerts.jsonl"
    with local_receiver(log, statuses=[503]) as inbox:
        outcome = send_alert(result, AlertConfig(webhook_url=inbox.url, **FAST), pipeline="drift-watch")
    assert outcome.delivered and outcome.attempts == 2  # the 503 was retried
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert len(lines) == 2 == len(inbox.requests)
    assert all(x["payload"]["alerts"][0]["labels"]["day"] == "2026-11-03" for x in lines)
    assert all(x["received_at"].endswith("Z") for x in lines)
    # the port is closed once the block ends: a later alert is not delivered, and does not raise
    late = send_alert(result, AlertConfig(webhook_url=inbox.url, **{**FAST, "retries": 0}), pipeline="drift-watch")
    assert not late.delivered


def test_what_the_local_receiver_got_is_read_back(tmp_path: Path) -> None:
    log = tmp_path / "alerts.jsonl"
    assert received_alerts(log) == []  # nothing alerted: no file
    with local_receiver(log) as inbox:
        alert = Alert(labels={"alertname": "ClipguardDataDrift", "day": "2026-11-05"}, annotations={"summary": "s"})
        assert send_alert(alert, AlertConfig(webhook_url=inbox.url)).delivered
    (got,) = received_alerts(log)
    assert got["status"] == "firing"
    assert got["alerts"] == [{"alertname": "ClipguardDataDrift", "day": "2026-11-05", "severity": "warning"}]


# --------------------------------------------------------------------------- a real Alertmanager


def test_a_real_alertmanager_takes_routes_and_resolves_the_drift_alert(tmp_path: Path, result: DriftResult) -> None:
    import requests

    from clipguard.monitoring.alerts import alertmanager_payload, drift_alert, resolve_alert
    from tests.services import alertmanager

    with local_receiver() as inbox, alertmanager(tmp_path / "am", inbox.url) as am:
        cfg = AlertConfig(alertmanager_url=am, labels={"team": "trust-safety"}, **FAST)
        sent = send_alert(result, cfg)
        assert sent.delivered and sent.status_code == 200 and sent.attempts == 1
        assert isinstance(sent.payload, list) and "endsAt" not in sent.payload[0]  # the API's array, firing

        (active,) = requests.get(f"{am}/api/v2/alerts", timeout=5).json()
        assert active["status"]["state"] == "active"
        assert active["labels"]["alertname"] == DRIFT_ALERTNAME and active["labels"]["team"] == "trust-safety"
        assert active["labels"]["day"] == "2026-11-03" and active["annotations"]["summary"].startswith("Data drift")
        assert active["fingerprint"] == sent.fingerprint  # our fingerprint is Alertmanager's own

        # Alertmanager routes it to its webhook receiver in the JSON our own webhook delivery writes
        forwarded = wait_for(lambda: [r for r in inbox.requests if r.get("status") == "firing"])[0]
        ours = alertmanager_payload([drift_alert(result, cfg)], cfg)
        assert set(ours) == set(forwarded) and forwarded["version"] == ours["version"] == "4"
        assert set(ours["alerts"][0]) == set(forwarded["alerts"][0])
        assert forwarded["alerts"][0]["fingerprint"] == ours["alerts"][0]["fingerprint"] == sent.fingerprint
        assert forwarded["alerts"][0]["labels"] == ours["alerts"][0]["labels"]

        resolved = resolve_alert(result, cfg)
        assert resolved.delivered and "endsAt" in resolved.payload[0]
        assert requests.get(f"{am}/api/v2/alerts", params={"active": "true"}, timeout=5).json() == []
        note = wait_for(lambda: [r for r in inbox.requests if r.get("status") == "resolved"])[0]
        assert note["alerts"][0]["fingerprint"] == sent.fingerprint


def test_an_alert_the_real_alertmanager_refuses_is_an_error_that_is_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.services import alertmanager

    with local_receiver() as inbox, alertmanager(tmp_path / "am", inbox.url) as am:
        cfg = AlertConfig(alertmanager_url=am, **FAST)
        bad = Alert(labels={"alertname": "ClipguardDataDrift", "not a label name": "x"}, annotations={"summary": "s"})
        with caplog.at_level(logging.ERROR, logger="clipguard.monitoring.alerts"):
            outcome = send_alert(bad, cfg)
    assert not outcome.delivered and outcome.status_code == 400 and outcome.attempts == 1  # a 4xx is not retried
    assert "NOT delivered" in caplog.text and any(r.levelno == logging.ERROR for r in caplog.records)


def test_resolving_needs_an_alertmanager_and_one_target_is_configured(result: DriftResult) -> None:
    from clipguard.monitoring.alerts import resolve_alert

    outcome = resolve_alert(result, AlertConfig(webhook_url="http://127.0.0.1:9/hook"))
    assert not outcome.delivered and outcome.attempts == 0 and "alertmanager_url" in (outcome.reason or "")
    with pytest.raises(ValueError, match="not both"):
        AlertConfig(webhook_url="http://a/hook", alertmanager_url="http://b:9093")


def test_a_run_that_fails_pages_and_one_that_succeeds_sends_nothing_to_a_webhook(receiver: Receiver) -> None:
    from clipguard.monitoring.alerts import PIPELINE_FAILED_ALERTNAME, report_run_end

    cfg = AlertConfig(webhook_url=receiver.url, labels={"team": "trust-safety"}, **FAST)
    failed = report_run_end("clipguard-training", "FAILED", cfg, run="run-7", error="Task student-distill failed.")
    assert failed.delivered and not failed.refused
    (alert,) = receiver.requests[0]["alerts"]
    assert alert["labels"] == {
        "alertname": PIPELINE_FAILED_ALERTNAME,
        "severity": "critical",  # the alert's own severity wins over cfg.severity
        "pipeline": "clipguard-training",
        "team": "trust-safety",
    }
    assert alert["annotations"]["run"] == "run-7" and alert["annotations"]["state"] == "FAILED"
    assert alert["annotations"]["description"] == "Task student-distill failed."
    # another failing run of the same pipeline is the same alert (the run is not a label)
    again = report_run_end("clipguard-training", "CANCELED", cfg, run="run-8")
    assert (
        again.fingerprint == failed.fingerprint
        and "without an error message" in again.payload["alerts"][0]["annotations"]["description"]
    )
    # a webhook cannot be told that an alert is over: nothing is sent, and that is not a refusal
    ok = report_run_end("clipguard-training", "SUCCEEDED", cfg, run="run-9")
    assert not ok.delivered and not ok.refused and "alertmanager_url" in (ok.reason or "")
    assert len(receiver.requests) == 2
    unset = report_run_end("clipguard-training", "FAILED", AlertConfig())
    assert not unset.delivered and not unset.refused and unset.reason == "no alert target configured"
