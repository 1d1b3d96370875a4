"""Alerts: Alertmanager-compatible webhook notifications that never fail the pipeline.

:func:`send_alert` posts the JSON body Prometheus Alertmanager sends to a
``webhook_config`` receiver (``version: "4"``), so any tool that accepts Alertmanager
webhooks (Alertmanager-to-Slack/Teams bridges, PagerDuty/Opsgenie webhook integrations,
Grafana OnCall, a small custom receiver) takes clipguard's alerts as they are::

    {"version": "4", "groupKey": "{}:{alertname=\\"ClipguardDataDrift\\"}", "truncatedAlerts": 0,
     "status": "firing", "receiver": "clipguard",
     "groupLabels": {"alertname": ...}, "commonLabels": {...}, "commonAnnotations": {...},
     "externalURL": "...",
     "alerts": [{"status": "firing", "labels": {...}, "annotations": {...},
                 "startsAt": "2026-11-07T06:00:00.000Z", "endsAt": "0001-01-01T00:00:00Z",
                 "generatorURL": "...", "fingerprint": "1a30ba71cca2921f"}]}

The fingerprint is Prometheus' label-set fingerprint (FNV-1a 64 over the sorted labels),
so a receiver that deduplicates on it sees one alert per drifted day, however often
the pipeline is re-run.

Delivery (:class:`~clipguard.config.AlertConfig`): connection errors, timeouts, 429
and 5xx are retried with exponential backoff and jitter (``Retry-After`` is honoured up
to ``backoff_max_s``); other 4xx are not retried (the request itself is wrong). Every
attempt has a timeout and the whole delivery is bounded by ``max_total_s``. Nothing
raises: the outcome says whether the alert was delivered, and a failure is logged as a
warning. Without a webhook the alert is only logged.

:func:`local_receiver` runs a receiver on 127.0.0.1 for local runs (``make demo`` points
``alerts.webhook_url`` at it and keeps what arrived) and for the tests.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from clipguard import __version__
from clipguard.config import AlertConfig, load_config
from clipguard.monitoring.drift import DriftResult

log = logging.getLogger(__name__)

DRIFT_ALERTNAME = "ClipguardDataDrift"
PAYLOAD_VERSION = "4"
_UNSET_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's endsAt of a firing alert
_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_SEPARATOR = 0xFF
_BAD_URL = (requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema, requests.exceptions.InvalidURL)


@dataclass(frozen=True)
class Alert:
    """One alert: ``labels`` identify it (``alertname`` is required), ``annotations`` describe it.

    ``severity`` and :attr:`AlertConfig.labels` are added to the labels when the payload
    is built, unless the alert sets them itself.
    """

    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    generator_url: str = ""


@dataclass(frozen=True)
class AlertOutcome:
    """What happened to one alert: ``delivered`` (a 2xx answer), after how many ``attempts``.

    ``status_code`` is the last HTTP status (None when no answer came), ``error`` the
    last failure, ``reason`` why nothing was sent (e.g. ``"no alert target configured"``),
    and ``payload`` the JSON body that was (or would have been) posted.
    """

    delivered: bool
    attempts: int
    status_code: int | None = None
    error: str | None = None
    reason: str | None = None
    elapsed_s: float = 0.0
    fingerprint: str | None = None
    payload: dict[str, Any] | list[dict[str, Any]] = field(default_factory=dict)
    """the webhook body, or the array posted to Alertmanager's API"""

    @property
    def refused(self) -> bool:
        """The alert had a target and did not get through (an error to count and report, unlike
        an alert that had nowhere to go, which ``reason`` explains)."""
        return not self.delivered and self.reason is None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "refused": self.refused}

    def metrics(self) -> dict[str, int]:
        """The counters a pipeline step logs for this alert."""
        return {"alerts_delivered": int(self.delivered), "alerts_refused": int(self.refused), "attempts": self.attempts}


def fingerprint(labels: Mapping[str, str]) -> str:
    """Prometheus' fingerprint of a label set (FNV-1a 64 over sorted name/value bytes), 16 hex digits."""
    h = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode():
                h = ((h ^ byte) * _FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
            h = ((h ^ _SEPARATOR) * _FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def _rfc3339(ts: datetime) -> str:
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    return ts.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def drift_alert(
    result: DriftResult,
    cfg: AlertConfig,
    *,
    pipeline: str = "drift-watch",
    top_k: int = 5,
    generator_url: str = "",
    now: datetime | None = None,
) -> Alert:
    """The ``ClipguardDataDrift`` alert of a drift result.

    Labels: ``alertname``, ``severity`` (``cfg.severity``), ``pipeline``, ``day`` (the
    result's period, else the UTC date of ``now``). Annotations: ``summary``,
    ``description`` (share, threshold, counts and the ``top_k`` most drifted columns
    with their scores), ``report_path`` (HTML) and ``report_json``.
    """
    now = now or datetime.now(timezone.utc)
    day = result.period or now.astimezone(timezone.utc).strftime("%Y-%m-%d")
    top = []
    for column in result.drifted_columns[:top_k]:
        info = result.per_column[column]
        top.append(f"{column} ({info['method']} {info['score']:.3g}, threshold {info['threshold']:.3g})")
    more = len(result.drifted_columns) - len(top)
    description = (
        f"{len(result.drifted_columns)} of {len(result.per_column)} monitored columns drifted "
        f"(share {result.share_drifted:.2f}, threshold {result.drift_share_threshold:.2f}) on "
        f"{result.n_current} clips against {result.n_reference} reference clips. "
        f"Top drifted: {', '.join(top) if top else 'none'}{f' and {more} more' if more > 0 else ''}."
    )
    annotations = {
        "summary": f"Data drift on {day}: {result.share_drifted:.0%} of monitored columns drifted",
        "description": description,
    }
    if result.html_path:
        annotations["report_path"] = result.html_path
    if result.json_path:
        annotations["report_json"] = result.json_path
    return Alert(
        labels={"alertname": DRIFT_ALERTNAME, "severity": cfg.severity, "pipeline": pipeline, "day": day},
        annotations=annotations,
        starts_at=now,
        generator_url=generator_url,
    )


PIPELINE_FAILED_ALERTNAME = "ClipguardPipelineFailed"
PIPELINE_FAILED_SEVERITY = "critical"
SUCCEEDED = "SUCCEEDED"
"""KFP's final state of a run that worked (``PipelineTaskFinalStatus.state``); anything else
(``FAILED``, ``CANCELED``, ...) pages on-call."""


def pipeline_failure_alert(
    pipeline: str,
    *,
    state: str,
    run: str = "",
    error: str = "",
    generator_url: str = "",
    now: datetime | None = None,
) -> Alert:
    """The ``ClipguardPipelineFailed`` alert of a pipeline run that ended in ``state``.

    Labels: ``alertname``, ``severity`` (``critical``), ``pipeline``. The run and the error
    are annotations, not labels, so Alertmanager keeps one alert per pipeline (re-sent by
    each failing run) that the next run which succeeds resolves (:func:`report_run_end`).
    """
    if not pipeline:
        raise ValueError("a pipeline failure alert needs the pipeline's name")
    annotations = {
        "summary": f"Pipeline {pipeline} ended {state}" + (f" (run {run})" if run else ""),
        "description": error or f"the run ended {state} without an error message",
        "state": state,
    }
    if run:
        annotations["run"] = run
    return Alert(
        labels={"alertname": PIPELINE_FAILED_ALERTNAME, "severity": PIPELINE_FAILED_SEVERITY, "pipeline": pipeline},
        annotations=annotations,
        starts_at=now or datetime.now(timezone.utc),
        generator_url=generator_url,
    )


def report_run_end(
    pipeline: str,
    state: str,
    cfg: AlertConfig,
    *,
    run: str = "",
    error: str = "",
    error_code: int | None = None,
    session: requests.Session | None = None,
) -> AlertOutcome:
    """What a pipeline's exit handler does when a run ends: a run that did not succeed sends
    :func:`pipeline_failure_alert` (``error`` and KFP's ``error_code`` in its description); one
    that succeeded resolves that alert (with ``cfg.alertmanager_url``; a webhook receiver
    cannot be told, and nothing is sent). Never raises (see :func:`send_alert`)."""
    if error_code:
        error = f"{error} (error code {error_code})".strip()
    alert = pipeline_failure_alert(pipeline, state=state, run=run, error=error, generator_url=cfg.external_url)
    if state == SUCCEEDED:
        return resolve_alert(alert, cfg, pipeline=pipeline, session=session)
    return send_alert(alert, cfg, pipeline=pipeline, session=session)


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    first = dict(maps[0])
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in maps[1:])}


def _labels(alert: Alert, cfg: AlertConfig) -> dict[str, str]:
    """The alert's labels with ``severity`` and ``cfg.labels`` added (the alert's own win)."""
    if "alertname" not in alert.labels:
        raise ValueError(f"an alert needs an 'alertname' label, got labels {dict(alert.labels)}")
    labels = {**cfg.labels, "severity": cfg.severity, **alert.labels}
    return {str(k): str(v) for k, v in labels.items()}


def alertmanager_alerts(alerts: Sequence[Alert], cfg: AlertConfig, *, ends_at: datetime | None = None) -> list[dict[str, Any]]:
    """The body of Alertmanager's ``POST /api/v2/alerts``: a JSON array of postable alerts.

    ``ends_at`` (e.g. now) resolves them: Alertmanager marks an alert with the same labels
    resolved and tells its receivers so. Without it the alerts fire until Alertmanager's
    ``resolve_timeout`` passes without a re-send.
    """
    if not alerts:
        raise ValueError("no alert to send")
    out = []
    for alert in alerts:
        entry: dict[str, Any] = {
            "labels": _labels(alert, cfg),
            "annotations": {str(k): str(v) for k, v in alert.annotations.items()},
            "startsAt": _rfc3339(alert.starts_at),
            "generatorURL": alert.generator_url,
        }
        if ends_at is not None:
            entry["endsAt"] = _rfc3339(ends_at)
        out.append(entry)
    return out


def alertmanager_payload(
    alerts: Sequence[Alert], cfg: AlertConfig, *, group_by: Sequence[str] = ("alertname",)
) -> dict[str, Any]:
    """The Alertmanager webhook body (``version: "4"``, status ``firing``) for ``alerts``."""
    entries = [
        {"status": "firing", **entry, "endsAt": _UNSET_TIME, "fingerprint": fingerprint(entry["labels"])}
        for entry in alertmanager_alerts(alerts, cfg)
    ]
    common_labels = _common([e["labels"] for e in entries])
    group_labels = {k: common_labels[k] for k in group_by if k in common_labels}
    group_key = "{}:{" + ", ".join(f'{k}="{v}"' for k, v in sorted(group_labels.items())) + "}"
    return {
        "version": PAYLOAD_VERSION,
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": cfg.receiver,
        "groupLabels": group_labels,
        "commonLabels": common_labels,
        "commonAnnotations": _common([e["annotations"] for e in entries]),
        "externalURL": cfg.external_url,
        "alerts": entries,
    }


def _redact(url: str) -> str:
    """``scheme://host:port`` only: webhook paths and queries often carry tokens."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        return "<invalid url>"
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"


def _scrub(text: str, url: str) -> str:
    """``text`` without the URL's path and query (error messages quote them)."""
    parts = urlsplit(url)
    text = text.replace(url, _redact(url))
    secret = parts.path + (f"?{parts.query}" if parts.query else "")
    return text.replace(secret, "/...") if secret not in ("", "/") else text


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header given in seconds (HTTP dates are ignored)."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _backoff(retry: int, cfg: AlertConfig) -> float:
    """Equal-jitter exponential backoff before retry ``retry`` (1-based): half fixed, half random."""
    delay = min(cfg.backoff_max_s, cfg.backoff_base_s * 2 ** (retry - 1))
    return delay / 2 + random.uniform(0, delay / 2)


def _post(url: str, payload: Any, cfg: AlertConfig, session: requests.Session, fp: str) -> AlertOutcome:
    """POST with retries; returns the outcome, never raises."""
    start = time.monotonic()
    deadline = start + cfg.max_total_s
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "User-Agent": f"clipguard/{__version__}"}
    attempts, status, error = 0, None, None
    for attempt in range(1, cfg.retries + 2):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        attempts = attempt
        timeout = min(cfg.timeout_s, remaining)
        retry_after = None
        try:
            response = session.post(url, data=body, headers=headers, timeout=(timeout, timeout))
        except _BAD_URL as exc:  # retrying cannot fix the configuration
            status, error, retryable = None, _scrub(f"{type(exc).__name__}: {exc}", url), False
        except requests.RequestException as exc:  # connection refused/reset, timeouts
            status, error, retryable = None, _scrub(f"{type(exc).__name__}: {exc}", url), True
        except Exception as exc:  # noqa: BLE001 - an alert must never fail the pipeline
            status, error, retryable = None, _scrub(f"{type(exc).__name__}: {exc}", url), False
        else:
            status = response.status_code
            if 200 <= status < 300:
                elapsed = time.monotonic() - start
                log.info("alert %s delivered to %s (attempt %d, HTTP %d)", fp, _redact(url), attempt, status)
                return AlertOutcome(
                    delivered=True,
                    attempts=attempt,
                    status_code=status,
                    elapsed_s=elapsed,
                    fingerprint=fp,
                    payload=payload,
                )
            error = f"HTTP {status}: {response.text[:200]}"
            retryable = status == 429 or status >= 500
            retry_after = _retry_after(response.headers.get("Retry-After"))
        if not retryable or attempt > cfg.retries:
            break
        delay = _backoff(attempt, cfg)
        if retry_after is not None:
            delay = max(delay, min(retry_after, cfg.backoff_max_s))
        if time.monotonic() + delay >= deadline:
            break
        log.info("alert %s: attempt %d failed (%s); retrying in %.2fs", fp, attempt, error, delay)
        time.sleep(delay)
    elapsed = time.monotonic() - start
    log.error("alert %s NOT delivered to %s after %d attempt(s) in %.1fs: %s", fp, _redact(url), attempts, elapsed, error)
    return AlertOutcome(
        delivered=False,
        attempts=attempts,
        status_code=status,
        error=error,
        elapsed_s=elapsed,
        fingerprint=fp,
        payload=payload,
    )


ALERTMANAGER_API = "/api/v2/alerts"


def send_alert(
    alert: Alert | DriftResult,
    cfg: AlertConfig,
    *,
    pipeline: str = "drift-watch",
    session: requests.Session | None = None,
) -> AlertOutcome:
    """Send one alert (or the :func:`drift_alert` of a drift result) to ``cfg.alertmanager_url``
    (its ``/api/v2/alerts``) or to ``cfg.webhook_url`` (the webhook JSON).

    Never raises, so alerting never blocks a pipeline: a dead, failing or refusing target
    gives ``delivered=False`` with the number of attempts and the last error, logged as an
    error. Without a target the alert is logged and ``reason="no alert target configured"``.
    ``session`` lets a caller reuse connections or add authentication. The caller decides
    when to alert (the drift-watch pipeline: on the first period whose
    ``DriftResult.drifted`` is true).
    """
    return _deliver(alert, cfg, pipeline=pipeline, session=session, ends_at=None)


def resolve_alert(
    alert: Alert | DriftResult,
    cfg: AlertConfig,
    *,
    pipeline: str = "drift-watch",
    session: requests.Session | None = None,
    ends_at: datetime | None = None,
) -> AlertOutcome:
    """Tell ``cfg.alertmanager_url`` that an alert with these labels is over (``endsAt`` =
    ``ends_at`` or now); Alertmanager sends the resolution to its receivers. A webhook
    receiver cannot be told (``reason`` says so): only Alertmanager tracks alert state."""
    if cfg.alertmanager_url is None:
        return AlertOutcome(delivered=False, attempts=0, reason="resolving an alert needs alerts.alertmanager_url")
    return _deliver(alert, cfg, pipeline=pipeline, session=session, ends_at=ends_at or datetime.now(timezone.utc))


def _deliver(
    alert: Alert | DriftResult,
    cfg: AlertConfig,
    *,
    pipeline: str,
    session: requests.Session | None,
    ends_at: datetime | None,
) -> AlertOutcome:
    try:
        if isinstance(alert, DriftResult):
            alert = drift_alert(alert, cfg, pipeline=pipeline)
        payload: Any
        if cfg.alertmanager_url is not None:
            payload = alertmanager_alerts([alert], cfg, ends_at=ends_at)
            labels, annotations = payload[0]["labels"], payload[0]["annotations"]
            url: str | None = cfg.alertmanager_url.rstrip("/") + ALERTMANAGER_API
        else:
            payload = alertmanager_payload([alert], cfg)
            labels, annotations = payload["alerts"][0]["labels"], payload["alerts"][0]["annotations"]
            url = cfg.webhook_url
    except Exception as exc:  # noqa: BLE001 - an alert must never fail the pipeline
        log.error("alert not sent: cannot build its payload: %s", exc)
        return AlertOutcome(delivered=False, attempts=0, error=f"cannot build payload: {exc}")
    fp = fingerprint(labels)
    if url is None:
        log.warning(
            "ALERT %s (%s; not sent: no alert target configured): %s %s",
            labels["alertname"],
            fp,
            annotations.get("summary", ""),
            annotations.get("description", ""),
        )
        return AlertOutcome(delivered=False, attempts=0, reason="no alert target configured", fingerprint=fp, payload=payload)
    if session is not None:
        return _post(url, payload, cfg, session, fp)
    with requests.Session() as own:
        return _post(url, payload, cfg, own, fp)


def run_alert_config(profile: str, overrides: Mapping[str, Any]) -> tuple[AlertConfig, str]:
    """The alert settings of a run's configuration, and ``""``; when the run's ``overrides``
    do not load (a run can fail for that very reason), the ``profile``'s own settings and why,
    so that the failure still reaches someone."""
    try:
        return load_config(profile, dict(overrides)).alerts, ""
    except Exception as exc:  # noqa: BLE001 - a run whose configuration is broken must still page someone
        return load_config(
            profile
        ).alerts, f"its configuration does not load ({exc}): alerting to the {profile!r} profile's target"


# --------------------------------------------------------------------------- local receiver


@dataclass
class LocalReceiver:
    """A webhook receiver on 127.0.0.1 (see :func:`local_receiver`): what it got and how it answers.

    ``statuses`` are answered in order to the first requests (then 200); ``delay_s`` holds
    every answer back (a slow on-call bridge); ``requests`` / ``headers`` record each POST.
    """

    url: str = ""
    statuses: list[int] = field(default_factory=list)
    delay_s: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    log_path: str | None = None


@contextmanager
def local_receiver(
    log_path: str | Path | None = None,
    statuses: Sequence[int] = (),
    delay_s: float = 0.0,
    path: str = "/hooks/alertmanager",
) -> Iterator[LocalReceiver]:
    """Run an Alertmanager-webhook receiver on 127.0.0.1 (a free port) while the block runs.

    For local runs and the demo, where no on-call system listens: point
    ``alerts.webhook_url`` at ``receiver.url`` and every alert that
    :func:`send_alert` delivers is recorded (and appended to ``log_path`` as one JSON line
    per request, if given). Tests use ``statuses`` / ``delay_s`` to play a failing receiver.
    """
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    state = LocalReceiver(statuses=list(statuses), delay_s=delay_s, log_path=str(log_path) if log_path else None)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server API
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                payload = json.loads(body)
            except ValueError:
                payload = {"unparsed": body.decode(errors="replace")}
            with lock:
                state.requests.append(payload)
                state.headers.append(dict(self.headers))
                if state.log_path:
                    with open(state.log_path, "a") as f:
                        f.write(json.dumps({"received_at": _rfc3339(datetime.now(timezone.utc)), "payload": payload}) + "\n")
                status = state.statuses.pop(0) if state.statuses else 200
            if state.delay_s:
                threading.Event().wait(state.delay_s)
            try:
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                pass

        def log_message(self, *args: object) -> None:
            pass

    if log_path is not None:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def received_alerts(log_path: str | Path) -> list[dict[str, Any]]:
    """What a :func:`local_receiver` logged to ``log_path``: per request, when it arrived, its
    status and each alert's ``alertname``, ``day`` and ``severity`` labels (``[]`` when nothing
    was received, so no file was written)."""
    path = Path(log_path)
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        payload = record["payload"]
        out.append(
            {
                "received_at": record["received_at"],
                "status": payload.get("status"),
                "alerts": [
                    {k: a.get("labels", {}).get(k) for k in ("alertname", "day", "severity")} for a in payload.get("alerts", [])
                ],
            }
        )
    return out
