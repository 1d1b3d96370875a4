"""Monitoring: data-drift reports on live traffic and the alerts they raise.

* :mod:`clipguard.monitoring.drift` — :func:`~clipguard.monitoring.drift.fit_projection`,
  :func:`~clipguard.monitoring.drift.drift_report`,
  :func:`~clipguard.monitoring.drift.drift_timeline` (Evidently ``DataDriftPreset``).
* :mod:`clipguard.monitoring.alerts` — :func:`~clipguard.monitoring.alerts.send_alert`
  (Alertmanager-compatible webhook with retries; never raises).

Submodules are imported explicitly; Evidently itself is imported only when a report runs.
"""
