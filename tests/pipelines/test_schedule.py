"""Recurring runs: the cron, the package and the parameters handed to ``create_recurring_run``."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pipelines.compile import COMPILED_DIR
from pipelines.schedule import create_schedule, kfp_cron

DRIFT_PARAMS = {
    "current_root": "s3://clipguard/traffic/latest",
    "encoder_uri": "s3://clipguard/kfp/training/pretrain-encoders/encoder/e0123",
    "reference_features_uri": "s3://clipguard/kfp/training/extract-features/features",
    "projection_uri": "s3://clipguard/kfp/training/fit-drift-projection/projection",
    "reference_root_uri": "s3://clipguard/kfp/training/assemble-root/root",
    "retrain_data_root": "s3://clipguard/corpus",
    "overrides_json": '{"alerts.webhook_url": "http://alertmanager:9093/api/v2/alerts"}',
}


class FakeClient:
    """Records the calls a ``kfp.Client`` would send to the cluster."""

    def __init__(self) -> None:
        self.experiments: list[str] = []
        self.recurring: list[dict[str, Any]] = []

    def create_experiment(self, name: str, **_: Any) -> SimpleNamespace:
        self.experiments.append(name)
        return SimpleNamespace(experiment_id=f"exp-{name}")

    def create_recurring_run(self, **kwargs: Any) -> SimpleNamespace:
        self.recurring.append(kwargs)
        return SimpleNamespace(recurring_run_id="rr-1", **kwargs)


def test_schedule_passes_cron_params_and_package() -> None:
    client = FakeClient()
    run = create_schedule(None, "drift_watch", "0 3 * * *", DRIFT_PARAMS, "moderation", client=client)
    assert run.recurring_run_id == "rr-1"
    assert client.experiments == ["moderation"]
    (call,) = client.recurring
    assert call["experiment_id"] == "exp-moderation"
    assert call["cron_expression"] == "0 0 3 * * *"  # KFP crons start with seconds
    assert call["params"] == DRIFT_PARAMS
    assert Path(call["pipeline_package_path"]) == COMPILED_DIR / "drift_watch.yaml"
    assert call["job_name"] == "clipguard-drift-watch"
    assert call["max_concurrency"] == 1 and call["no_catchup"] is True and call["enabled"] is True


def test_six_field_cron_is_kept() -> None:
    client = FakeClient()
    create_schedule(None, "training", "0 30 2 * * 0", {"data_root": "s3://clipguard/corpus"}, client=client)
    assert client.recurring[0]["cron_expression"] == "0 30 2 * * 0"


@pytest.mark.parametrize("cron", ["* * *", "0 0 3 * * * *", ""])
def test_bad_cron_is_refused(cron: str) -> None:
    with pytest.raises(ValueError, match="fields"):
        kfp_cron(cron)


def test_unknown_and_missing_params_never_reach_the_cluster() -> None:
    client = FakeClient()
    with pytest.raises(ValueError, match="no parameter"):
        create_schedule(None, "drift_watch", "0 3 * * *", {**DRIFT_PARAMS, "curent_root": "x"}, client=client)
    params = {k: v for k, v in DRIFT_PARAMS.items() if k != "projection_uri"}
    with pytest.raises(ValueError, match="needs parameter.*projection_uri"):
        create_schedule(None, "drift_watch", "0 3 * * *", params, client=client)
    with pytest.raises(KeyError):
        create_schedule(None, "nightly", "0 3 * * *", {}, client=client)
    assert client.recurring == []
