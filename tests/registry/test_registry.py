"""The registry end to end on a per-test SQLite store: log, gate, promote, roll back, load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from clipguard.config import Config
from clipguard.registry import (
    Lineage,
    ModelPackageError,
    PromotionRefusedError,
    RollbackError,
    UnknownFamilyError,
    UnknownVersionError,
    current,
    gate_version,
    log_json,
    log_markdown_table,
    log_metrics,
    log_model,
    log_png,
    promote,
    registered_model_name,
    rollback,
    show,
    start_run,
)
from clipguard.registry.gate import gate_history
from tests.registry.tiny_model import make_tiny

GOOD = {"ap": 0.80, "baseline_ap": 0.40, "r_at_p80": 0.50, "pairs_per_s": 900.0, "p99_ms": 12.0}
LINEAGE = Lineage(data_version="data-1", encoder_version="enc-1", index_version="idx-1")


def _register(cfg: Config, tmp_path: Path, seed: int, metrics=GOOD, lineage=LINEAGE):
    model, weights, config = make_tiny(tmp_path / "weights", seed)
    return model, log_model("student", weights, config, cfg=cfg, metrics=metrics, lineage=lineage)


def _client():
    import mlflow

    return mlflow.MlflowClient()


def test_logged_model_loads_back_through_champion_alias_without_pickle(
    registry_cfg: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import mlflow

    model, mv = _register(registry_cfg, tmp_path, seed=1)
    assert str(mv.version) == "1" and mv.tags["family"] == "student"
    assert mv.tags["data_version"] == "data-1" and mv.tags["content_digest"]
    assert gate_version("student", mv.version, cfg=registry_cfg).passed
    promote("student", cfg=registry_cfg)

    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")  # proves nothing is unpickled
    loaded = mlflow.pyfunc.load_model(f"models:/{registered_model_name('student', registry_cfg)}@champion")
    x = np.random.default_rng(0).normal(size=(5, 4))  # float64: cast to the weights' dtype
    with torch.no_grad():
        expected = model(torch.from_numpy(x).float()).numpy()
    np.testing.assert_allclose(loaded.predict(x), expected, rtol=1e-6)
    assert type(loaded.get_raw_model()).__name__ == "TinyLinear"


def test_log_model_is_idempotent_and_validates_inputs(registry_cfg: Config, tmp_path: Path):
    _, first = _register(registry_cfg, tmp_path, seed=1)
    _, again = _register(registry_cfg, tmp_path, seed=1)
    assert again.version == first.version
    _, weights, config = make_tiny(tmp_path / "w", 3)
    with pytest.raises(UnknownFamilyError, match="unknown model family 'studnet'"):
        log_model("studnet", weights, config, cfg=registry_cfg)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not safetensors")
    with pytest.raises(ModelPackageError, match="not a valid safetensors file"):
        log_model("student", bad, config, cfg=registry_cfg)
    with pytest.raises(ModelPackageError, match="not trusted"):
        log_model("student", weights, {**config, "loader": "os:system"}, cfg=registry_cfg)


def test_degraded_challenger_is_refused_and_never_promoted(registry_cfg: Config, tmp_path: Path):
    _, v1 = _register(registry_cfg, tmp_path, seed=1)
    first = gate_version("student", v1.version, cfg=registry_cfg)
    assert first.passed and first.champion_version is None
    assert any("only the floors and baseline rules apply" in r for r in first.reasons)
    promote("student", cfg=registry_cfg)

    _, v2 = _register(registry_cfg, tmp_path, seed=2, metrics={**GOOD, "ap": 0.70})
    decision = gate_version("student", v2.version, cfg=registry_cfg)
    assert not decision.passed and decision.champion_version == "1"
    assert decision.reasons[0].startswith("ap = 0.7 vs champion v1 0.8: regressed beyond the tolerance")

    tags = _client().get_model_version(registered_model_name("student", registry_cfg), v2.version).tags
    assert tags["gate"] == "failed" and "regressed" in json.loads(tags["gate.reasons"])[0]
    state = current("student", cfg=registry_cfg)
    assert state.aliases == {"champion": "1"}  # no alias for the failed version
    history = gate_history("student", registry_cfg)
    assert [(h["version"], h["gate"], h["champion_at_gate"]) for h in history] == [("1", "passed", None), ("2", "failed", "1")]
    assert history[1]["reasons"] == decision.reasons and history[1]["metrics"]["ap"] == 0.7
    assert history[1]["data_version"] == "data-1"
    with pytest.raises(PromotionRefusedError, match="no challenger"):
        promote("student", cfg=registry_cfg)
    with pytest.raises(PromotionRefusedError, match="gate=failed .*regressed beyond"):
        promote("student", v2.version, cfg=registry_cfg)
    assert current("student", cfg=registry_cfg).champion == "1"

    with pytest.warns(UserWarning, match="promoting anyway because force=True"):
        forced = promote("student", v2.version, force=True, cfg=registry_cfg)
    assert forced.champion == "2" and forced.versions["2"]["promoted_with_force"] == "true"


def test_regating_a_challenger_that_now_fails_removes_the_alias(registry_cfg: Config, tmp_path: Path):
    _, v1 = _register(registry_cfg, tmp_path, seed=1)
    assert gate_version("student", v1.version, cfg=registry_cfg).passed
    assert current("student", cfg=registry_cfg).aliases == {"challenger": "1"}
    d = gate_version("student", v1.version, cfg=registry_cfg, extra_metrics={"p99_ms": 80.0})
    assert not d.passed and d.reasons[0] == "p99_ms = 80 > ceiling 50"
    assert current("student", cfg=registry_cfg).aliases == {}


def test_gate_reads_the_measured_speed_of_the_evaluation_report(registry_cfg: Config, tmp_path: Path):
    """The register step attaches ``metrics`` of ``metrics_<split>.json`` (quality + measured speed):
    a student scoring under the policy's pairs/s floor is refused, one without speed fails closed."""
    from clipguard.registry.gate import read_metrics_json

    def report(name: str, metrics: dict) -> dict[str, float]:
        path = tmp_path / name / "metrics_test.json"
        path.parent.mkdir()
        path.write_text(json.dumps({"model": "student", "threshold": 0.4, "metrics": metrics, "speed": {"batch_size": 64}}))
        return read_metrics_json(path, "metrics")

    slow = report("slow", {**GOOD, "pairs_per_s": 320.0, "p50_ms": 4.0, "f1": 0.7})
    assert slow == {**GOOD, "pairs_per_s": 320.0, "p50_ms": 4.0, "f1": 0.7}
    _, v1 = _register(registry_cfg, tmp_path, seed=1, metrics=slow)
    decision = gate_version("student", v1.version, cfg=registry_cfg)  # the committed policy
    assert not decision.passed and decision.reasons[0] == "pairs_per_s = 320 < floor 500"
    assert current("student", cfg=registry_cfg).aliases == {}

    unmeasured = report("unmeasured", {"ap": 0.8, "baseline_ap": 0.4, "r_at_p80": 0.5})
    _, v2 = _register(registry_cfg, tmp_path, seed=2, metrics=unmeasured)
    decision = gate_version("student", v2.version, cfg=registry_cfg)
    assert not decision.passed
    assert decision.reasons[:2] == [
        "pairs_per_s: missing from the candidate's metrics (required by the student policy)",
        "p99_ms: missing from the candidate's metrics (required by the student policy)",
    ]

    fast = report("fast", GOOD)
    _, v3 = _register(registry_cfg, tmp_path, seed=3, metrics=fast)
    assert gate_version("student", v3.version, cfg=registry_cfg).passed


def test_promote_rollback_round_trip(registry_cfg: Config, tmp_path: Path):
    for seed in (1, 2, 3):
        _, mv = _register(registry_cfg, tmp_path, seed=seed, metrics={**GOOD, "ap": 0.80 + seed / 100})
        assert gate_version("student", mv.version, cfg=registry_cfg).passed
        state = promote("student", cfg=registry_cfg)
        assert state.champion == str(mv.version) and "challenger" not in state.aliases
    assert state.aliases == {"champion": "3", "previous": "2"}
    assert state.history == ["1", "2", "3"]
    assert promote("student", "3", cfg=registry_cfg) == state  # idempotent

    back = rollback("student", cfg=registry_cfg)
    assert back.aliases == {"champion": "2", "previous": "1", "rolled_back": "3"}
    assert "rolled_back_at" in back.versions["3"]
    back = rollback("student", cfg=registry_cfg)
    assert back.aliases == {"champion": "1", "rolled_back": "2"} and back.history == ["1"]
    with pytest.raises(RollbackError, match="first champion"):
        rollback("student", cfg=registry_cfg)

    # v2 promoted again (it passed its gate): v1 becomes previous again
    again = promote("student", "2", cfg=registry_cfg)
    assert again.aliases["champion"] == "2" and again.aliases["previous"] == "1"


def test_champion_moved_in_the_ui_joins_the_history(registry_cfg: Config, tmp_path: Path):
    for seed in (1, 2, 3):
        _, mv = _register(registry_cfg, tmp_path, seed=seed, metrics={**GOOD, "ap": 0.80 + seed / 100})
        gate_version("student", mv.version, cfg=registry_cfg)
        if seed < 3:
            promote("student", cfg=registry_cfg)
    _client().set_registered_model_alias(registered_model_name("student", registry_cfg), "champion", "3")  # one-click in the UI
    state = rollback("student", cfg=registry_cfg)
    assert state.champion == "2" and state.aliases["rolled_back"] == "3"


def test_gate_refuses_comparison_across_test_sets_unless_given(registry_cfg: Config, tmp_path: Path):
    _, v1 = _register(registry_cfg, tmp_path, seed=1)
    gate_version("student", v1.version, cfg=registry_cfg)
    promote("student", cfg=registry_cfg)
    _, v2 = _register(registry_cfg, tmp_path, seed=2, lineage=Lineage(data_version="data-2"))
    d = gate_version("student", v2.version, cfg=registry_cfg)
    assert not d.passed
    assert d.reasons[0].startswith("champion v1 was evaluated on data_version data-1, the candidate on data-2")
    d = gate_version("student", v2.version, cfg=registry_cfg, champion_metrics={"ap": 0.78, "r_at_p80": 0.5})
    assert d.passed and current("student", cfg=registry_cfg).aliases["challenger"] == "2"


def test_unknown_family_and_version_errors(registry_cfg: Config, tmp_path: Path):
    with pytest.raises(UnknownFamilyError, match="known: teacher, student, encoder, index"):
        promote("nope", 1, cfg=registry_cfg)
    with pytest.raises(UnknownVersionError, match="has no version 7"):
        promote("student", 7, cfg=registry_cfg)
    _register(registry_cfg, tmp_path, seed=1)
    with pytest.raises(UnknownVersionError, match="has no version 7"):
        gate_version("student", 7, cfg=registry_cfg)
    with pytest.raises(RollbackError, match="no champion"):
        rollback("student", cfg=registry_cfg)
    states = show(cfg=registry_cfg)
    assert states["student"].exists and not states["teacher"].exists


def test_runs_carry_lineage_params_metrics_and_artifacts(registry_cfg: Config, tmp_path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    png = tmp_path / "curve.png"
    fig.savefig(png)
    with start_run("train-student", cfg=registry_cfg, lineage=LINEAGE, params={"trainer": {"epochs": 2}}) as run:
        logged = log_metrics({"ap": 0.8, "per_edit": {"crop": {"ap": 0.7}}, "note": "x"}, step=1)
        log_json({"ap": np.float32(0.5), "shape": np.arange(3)}, "eval/summary.json")
        table = log_markdown_table([{"edit": "crop", "ap": 0.71234}], "eval/per_edit.md", title="Per edit")
        log_png(png, "plots/pr.png")
        log_png(fig, "plots/fig.png")
    plt.close(fig)
    assert logged == {"ap": 0.8, "per_edit.crop.ap": 0.7}
    assert table == "## Per edit\n\n| edit | ap |\n|---|---|\n| crop | 0.7123 |\n"

    data = _client().get_run(run.info.run_id).data
    for key, value in {"data_version": "data-1", "encoder_version": "enc-1", "index_version": "idx-1"}.items():
        assert data.tags[key] == value
    assert data.tags["clipguard.profile"] == registry_cfg.profile
    assert data.tags.get("git_commit") == data.tags.get("mlflow.source.git.commit")
    assert data.params["pretrain.lr"] == "0.002" and data.params["trainer.epochs"] == "2"
    assert data.params["registry.models.student"] == registered_model_name("student", registry_cfg)
    assert data.metrics == {"ap": 0.8, "per_edit.crop.ap": 0.7}
    files = {a.path for d in ("eval", "plots") for a in _client().list_artifacts(run.info.run_id, d)}
    assert files == {"eval/summary.json", "eval/per_edit.md", "plots/pr.png", "plots/fig.png"}
    if registry_cfg.registry.tracking_uri is None:
        assert (Path(registry_cfg.work_dir) / "mlartifacts").is_dir()  # the local default artifact location
    else:  # the server stores and serves the artifacts (proxied)
        assert _client().get_experiment(run.info.experiment_id).artifact_location.startswith("mlflow-artifacts:")


def test_cli_lists_every_version_with_its_gate_decision(_migrated_db: Path, tmp_path: Path):
    import shutil

    from typer.testing import CliRunner

    from clipguard.cli import app
    from clipguard.config import load_config
    from clipguard.core.tracking import LOCAL_DB_FILE

    shutil.copyfile(_migrated_db, tmp_path / LOCAL_DB_FILE)
    cfg = load_config(overrides={"work_dir": str(tmp_path)})
    _, v1 = _register(cfg, tmp_path, seed=1)
    _, v2 = _register(cfg, tmp_path, seed=2, metrics={**GOOD, "ap": 0.10})
    gate_version("student", v1.version, cfg=cfg)
    runner = CliRunner()
    result = runner.invoke(app, ["--set", f"work_dir={tmp_path}", "registry", "gates", "student"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["version"], r["gate"]) for r in rows] == [("1", "passed"), ("2", "not gated")]
    unknown = runner.invoke(app, ["--set", f"work_dir={tmp_path}", "registry", "gates", "no-such-family"])
    assert unknown.exit_code == 1 and "no-such-family" in unknown.output
