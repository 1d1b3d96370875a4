"""``clipguard pipelines compile|run|schedule`` and the parameter plumbing of local runs."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from clipguard.cli import app
from pipelines.run_local import local_params, parse_params


def test_parse_params_types_scalars_only() -> None:
    params = parse_params(["seed=3", "retrain=false", "data_root=/data/c", 'overrides_json={"seed": 1}', "tag="])
    assert params == {
        "seed": 3,
        "retrain": False,
        "data_root": "/data/c",
        "overrides_json": '{"seed": 1}',
        "tag": "",
    }
    with pytest.raises(ValueError):
        parse_params(["novalue"])


def test_local_params_make_work_dir_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    out = local_params({"overrides_json": '{"seed": 2}'})
    assert json.loads(out["overrides_json"]) == {"seed": 2, "work_dir": str(tmp_path / "runs")}
    out = local_params({}, work_dir="elsewhere")
    assert json.loads(out["overrides_json"])["work_dir"] == str(tmp_path / "elsewhere")


def test_local_params_make_data_paths_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    out = local_params({"data_root": "data/corpus", "encoder_uri": "s3://b/enc", "seed": 1, "retrain_data_root": ""})
    assert out["data_root"] == str(tmp_path / "data" / "corpus")
    assert out["encoder_uri"] == "s3://b/enc" and out["seed"] == 1 and out["retrain_data_root"] == ""


def test_cli_compile_one(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["pipelines", "compile", "data_prep", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "data_prep.yaml").is_file()
    bad = CliRunner().invoke(app, ["pipelines", "compile", "nightly", "--out", str(tmp_path)])
    assert bad.exit_code != 0


def test_cli_run_merges_profile_and_set(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []

    def fake_run(name: str, params: dict[str, Any], **kwargs: Any) -> SimpleNamespace:
        calls.append({"name": name, "params": params, **kwargs})
        return SimpleNamespace(outputs={})

    monkeypatch.setattr("pipelines.run_local.run_pipeline", fake_run)
    result = CliRunner().invoke(
        app,
        [
            "--profile",
            "local",
            "--set",
            "synth.workers=1",
            "pipelines",
            "run",
            "data_prep",
            "-p",
            "clips=40",
            "-p",
            'overrides_json={"seed": 4}',
        ],
    )
    assert result.exit_code == 0, result.output
    (call,) = calls
    assert call["name"] == "data_prep"
    assert call["params"]["clips"] == 40 and call["params"]["profile"] == "local"
    assert json.loads(call["params"]["overrides_json"]) == {"synth.workers": 1, "seed": 4}


def test_cli_schedule(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines.compile import COMPILED_DIR

    calls: list[tuple] = []
    monkeypatch.setattr(
        "pipelines.schedule.create_schedule",
        lambda *args, **kwargs: calls.append((*args, kwargs)) or SimpleNamespace(recurring_run_id="rr-9"),
    )
    result = CliRunner().invoke(
        app, ["pipelines", "schedule", "training", "--host", "http://kfp", "--cron", "0 2 * * 0", "-p", "data_root=s3://c"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("rr-9")
    assert calls == [("http://kfp", "training", "0 2 * * 0", {"data_root": "s3://c"}, "clipguard", {"package_dir": COMPILED_DIR})]
    gpu = ["pipelines", "schedule", "training", "--host", "h", "--cron", "0 2 * * 0", "--package-dir", str(COMPILED_DIR / "gpu")]
    assert CliRunner().invoke(app, gpu).exit_code == 0
    assert calls[-1][-1] == {"package_dir": COMPILED_DIR / "gpu"}
