"""The demo's pieces (the whole demo runs with `make demo`, ~20 minutes: not a test)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from pipelines.demo import DemoPlan, _drift_day, _output_to, print_summary, task_seconds


def test_plan_watches_the_last_ordinary_day_and_the_trend_day() -> None:
    assert DemoPlan.for_corpus(5, 4) == DemoPlan((0, 1, 2), (3, 4), 4)
    assert DemoPlan.for_corpus(8, 6, watch_before_trend=2) == DemoPlan((0, 1, 2, 3), (4, 5, 6), 6)
    assert DemoPlan.for_corpus(3, 1) == DemoPlan((0,), (1,), 1)  # at least one training day
    with pytest.raises(ValueError, match="trend day 5"):
        DemoPlan.for_corpus(5, 5)


def test_task_seconds_splits_a_sequential_run(tmp_path: Path) -> None:
    started = time.time()
    for i, task in enumerate(("validate-data", "train", "gate-model")):
        (tmp_path / task).mkdir()
        f = tmp_path / task / "out"
        f.write_text("x")
        stamp = started + 10 * (i + 1) + (5 if task == "gate-model" else 0)
        os.utime(f, (stamp, stamp))
        os.utime(tmp_path / task, (started, started))
    assert task_seconds(tmp_path, started) == {"validate-data": 10.0, "train": 10.0, "gate-model": 15.0}


def _drift_run(tmp_path: Path, drifted: bool) -> Path:
    run = tmp_path / ("drifted" if drifted else "calm")
    (run / "drift-check" / "result").mkdir(parents=True)
    result = {
        "drifted": drifted,
        "share_drifted": 0.6 if drifted else 0.1,
        "drifted_columns": ["visual_0"] * drifted,
        "n_reference": 200,
        "n_current": 90,
    }
    (run / "drift-check" / "result" / "result.json").write_text(json.dumps(result))
    if drifted:
        (run / "send-alert").mkdir()
        (run / "send-alert" / "outcome").write_text(json.dumps({"delivered": False, "reason": "no alert target configured"}))
        (run / "gate-model-2").mkdir()
        decision = {"candidate_version": "3", "passed": True, "reasons": ["passed 4 checks on ap"]}
        (run / "gate-model-2" / "decision").write_text(json.dumps(decision))
        (run / "package-bento-2" / "bento").mkdir(parents=True)
        (run / "package-bento-2" / "bento" / "build.json").write_text(json.dumps({"tag": "clipguard:abc"}))
    return run


def test_drift_day_reads_what_the_run_decided_and_the_summary_prints(tmp_path: Path, capsys) -> None:
    calm = _drift_day(_drift_run(tmp_path, False), 3, "2026-11-04")
    assert (calm["drifted"], calm["alert"], calm["retrained"], calm["bento"]) == (False, None, False, None)
    hot = _drift_day(_drift_run(tmp_path, True), 4, "2026-11-05")
    assert hot["drifted"] and hot["alert"]["reason"] == "no alert target configured"
    assert hot["retrain_gate"] == {"version": "3", "passed": True, "reasons": ["passed 4 checks on ap"]}
    assert hot["bento"] == "clipguard:abc"

    from rich.console import Console

    summary = {
        "out": str(tmp_path),
        "train_days": [0, 1, 2],
        "watch_days": [3, 4],
        "corpus": {"root": "c", "clips": 10, "pairs": 20, "positives": 2, "days": 5, "trend_day": 4},
        "champions": {"student": {"champion": "3", "previous": "1", "challenger": None, "history": ["1", "3"]}},
        "gate_decisions": [{"version": "2", "description": "zeroed", "gate": "failed", "reasons": ["ap = 0.05 < floor 0.5"]}],
        "degraded_challenger": {
            "version": "2",
            "source_version": "1",
            "passed": False,
            "champion_before": "1",
            "champion_after": "1",
            "champion_unchanged": True,
        },
        "drift_timeline": [{**calm, "trend_day": False}, {**hot, "trend_day": True}],
        "where": {
            "mlflow_db": "db",
            "mlflow_ui": "ui",
            "drift_reports": ["r3", "r4"],
            "training_evaluation": "e",
            "bentoml_home": "b",
            "bentos": [],
        },
        "step_seconds": {"corpus": 100.0},
        "task_seconds": {"training": {"teacher-sft": 50.0}},
        "total_seconds": 700.0,
        "alerts_received": [
            {
                "received_at": "t",
                "status": "firing",
                "alerts": [{"alertname": "ClipguardDataDrift", "day": "2026-11-05", "severity": "warning"}],
            }
        ],
    }
    print_summary(summary, Console(width=200, force_terminal=False))
    text = capsys.readouterr().out
    assert "ap = 0.05 < floor 0.5" in text and "(unchanged)" in text and "v3 passed" in text
    assert "total wall time: 700 s (11.7 min)" in text
    assert "alerts received by the local webhook receiver: 1 request(s): ClipguardDataDrift (day 2026-11-05)" in text


def test_pipeline_output_goes_to_the_log_then_back(tmp_path: Path, capfd) -> None:
    import subprocess
    import sys

    log = tmp_path / "logs" / "training.log"
    with _output_to(log):
        os.write(1, b"in the demo\n")  # (pytest swaps sys.stdout; the demo's own writes reach fd 1)
        subprocess.run([sys.executable, "-c", "import sys; print('a task'); print('its error', file=sys.stderr)"], check=True)
    os.write(1, b"after\n")
    assert log.read_text().splitlines() == ["in the demo", "a task", "its error"]
    assert capfd.readouterr().out == "after\n"
