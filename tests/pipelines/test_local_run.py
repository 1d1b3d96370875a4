"""Pipelines run end to end with ``kfp.local`` (SubprocessRunner, use_venv=False) on tiny data."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from clipguard.monitoring.alerts import local_receiver
from pipelines.run_local import run_pipeline

TINY_SYNTH = {
    "synth.trend_day": 1,
    "synth.streams": 0,
    "synth.workers": 1,
    "synth.min_seconds": 2.0,
    "synth.max_seconds": 4.0,
    "synth.video_fps": 5.0,
}
"""40 short, low-frame-rate videos over 2 days: the smallest corpus the generator accepts."""


def _task_dir(pipeline_root: Path, task: str) -> Path:
    (run,) = pipeline_root.iterdir()
    return run / task


def _active(alertmanager_url: str) -> list[dict]:
    import requests

    return requests.get(f"{alertmanager_url}/api/v2/alerts", params={"active": "true"}, timeout=5).json()


def test_data_prep_runs_locally_and_its_exit_handler_pages_on_failure(tmp_path: Path) -> None:
    """As compiled (inside the exit handler): a run that fails sends ``ClipguardPipelineFailed``
    to a real Alertmanager, which forwards it; the next run that succeeds resolves it."""
    from clipguard.monitoring.alerts import PIPELINE_FAILED_ALERTNAME
    from tests.services import alertmanager, wait_for

    with local_receiver() as inbox, alertmanager(tmp_path / "am", inbox.url) as am:
        alerts = {"alerts.alertmanager_url": am, "alerts.backoff_base_s": 0.05, "alerts.max_total_s": 10.0}
        broken = {**TINY_SYNTH, **alerts, "synth.min_seconds": 5.0, "synth.max_seconds": 4.0}  # fails at planning
        with pytest.raises(RuntimeError, match="FAILURE"):
            run_pipeline(
                "data_prep",
                {"seed": 3, "clips": 40, "days": 2, "overrides_json": json.dumps(broken)},
                pipeline_root=tmp_path / "failed",
                work_dir=tmp_path / "runs",
                alert_on_failure=True,
            )
        exit_task = json.loads((_task_dir(tmp_path / "failed", "alert-on-failure") / "executor_output.json").read_text())
        assert exit_task["parameterValues"]["Output"] is True  # delivered
        (active,) = _active(am)
        assert active["labels"]["alertname"] == PIPELINE_FAILED_ALERTNAME
        assert active["labels"]["pipeline"] == "clipguard-data-prep" and active["labels"]["severity"] == "critical"
        assert active["annotations"]["state"] == "FAILED" and "failed" in active["annotations"]["description"]
        firing = wait_for(lambda: [r for r in inbox.requests if r.get("status") == "firing"])[0]
        assert firing["alerts"][0]["labels"]["pipeline"] == "clipguard-data-prep"

        pipeline_root = tmp_path / "kfp"
        run_pipeline(
            "data_prep",
            {"seed": 3, "clips": 40, "days": 2, "overrides_json": json.dumps({**TINY_SYNTH, **alerts})},
            pipeline_root=pipeline_root,
            work_dir=tmp_path / "runs",
            alert_on_failure=True,
        )
        assert _active(am) == []  # the run that worked resolved it
        resolved = wait_for(lambda: [r for r in inbox.requests if r.get("status") == "resolved"])[0]
        assert resolved["alerts"][0]["fingerprint"] == firing["alerts"][0]["fingerprint"]
    root = _task_dir(pipeline_root, "assemble-root") / "root"
    accepted = pd.read_parquet(root / "validated" / "clips.parquet")
    assert len(accepted) >= 40
    assert (root / "validated" / "report.html").is_file()
    assert all((root / uri).is_file() for uri in accepted["video_uri"])
    # the media are hard-linked from the corpus, not copied
    corpus = _task_dir(pipeline_root, "synth-corpus") / "corpus"
    first = accepted["video_uri"].iloc[0]
    assert (root / first).stat().st_ino == (corpus / first).stat().st_ino

    validate = _task_dir(pipeline_root, "validate-data")
    metrics = json.loads((validate / "executor_output.json").read_text())
    assert metrics["parameterValues"]["Output"].startswith("d")
    assert (validate / "report").is_file()


TINY_TRAINING = {
    "pretrain.epochs": 1,
    "pretrain.batch_size": 8,
    "pretrain.queue_size": 16,
    "pretrain.audio_steps": 2,
    "pretrain.audio_batch_size": 4,
    "pretrain.audio_window_seconds": 2,
    "pretrain.torch_threads": 1,
    "features.torch_threads": 1,
    "models.training.torch_threads": 1,
    "models.teacher.epochs": 1,
    "models.student.epochs": 1,
    "models.distill.epochs": 1,
    "index.threads": 1,
}
"""One epoch of everything, one thread per step (the local runner runs steps one at a time)."""

FORCE_DRIFT = {"drift.stattest_threshold": 1e-9, "drift.discrete_threshold": 1e-9, "drift.min_current_rows": 1}
"""Any difference between two sets of clips counts as drift (and a tiny window is evaluated):
the drifted branch must run."""


def _corpus(tmp_path: Path, seed: int, work_dir: Path) -> Path:
    prep_root = tmp_path / f"prep-{seed}"
    run_pipeline(
        "data_prep",
        {"seed": seed, "clips": 40, "days": 2, "overrides_json": json.dumps(TINY_SYNTH)},
        pipeline_root=prep_root,
        work_dir=work_dir,
    )
    return _task_dir(prep_root, "synth-corpus") / "corpus"


@pytest.mark.slow
def test_training_then_drift_watch_with_retraining(tmp_path: Path) -> None:
    """training → gate → champion → bento; then a drifted window → alert → nested retraining on
    new data → the champion re-evaluated on the new test set → re-gate → new champion → bento."""
    from clipguard.config import load_config
    from clipguard.data.days import slice_days
    from clipguard.registry import current
    from pipelines.run_local import describe_outputs

    work_dir = tmp_path / "runs"
    policy = tmp_path / "policy.yaml"
    # every floor passes and the champion comparison is always made (ap within 1.0 of it)
    policy.write_text(
        "version: 1\nfamilies:\n  student:\n    metrics:\n      ap:\n        threshold: 0.0\n        max_regression: 1.0\n"
    )
    overrides = {**TINY_SYNTH, **TINY_TRAINING, "registry.policy_path": str(policy)}
    cfg = load_config(overrides={**overrides, "work_dir": str(work_dir)})

    corpus = _corpus(tmp_path, 0, work_dir)
    train = run_pipeline(
        "training",
        {"data_root": str(corpus), "overrides_json": json.dumps(overrides)},
        pipeline_root=tmp_path / "train",
        work_dir=work_dir,
    )
    outputs = describe_outputs(train)
    assert (Path(outputs["encoder"]) / "encoder.json").is_file()
    assert (Path(outputs["projection"])).is_file()
    state = current("student", cfg=cfg)
    assert state.champion == "1"
    assert state.versions["1"]["gate"] == "passed"
    # the champion carries its encoders: registered, linked, and fetched by rci score's resolver
    from clipguard.rci.student import load_student, resolve_encoder_dir

    champion = load_student(None, cfg)
    assert champion.encoder_model == "clipguard-encoder/1"
    assert not (work_dir / "encoders").exists()
    fetched = resolve_encoder_dir(cfg, None, champion.encoder_version, encoder_model=champion.encoder_model)
    assert fetched == work_dir / "encoders" / champion.encoder_version
    assert json.loads((fetched / "encoder.json").read_text())["version"] == champion.encoder_version
    (run,) = (tmp_path / "train").iterdir()
    assert (run / "materialize-features" / "feast_store").is_file()
    assert (run / "training-set" / "pairs").is_file()
    # the promoted champion was packaged: a bento in <work_dir>/bentoml, exported into the artifact
    build = json.loads((run / "package-bento" / "bento" / "build.json").read_text())
    assert build["labels"]["clipguard.registry_version"] == "1"
    assert build["bentoml_home"] == str(work_dir / "bentoml") and Path(build["archive"]).is_file()

    # the window: the corpus's last day (its clips are left out of the reference, which holds
    # them); retraining runs on new data, another corpus, hence another test set
    window = slice_days(corpus, tmp_path / "window", [1]).root
    new_data = _corpus(tmp_path, 1, work_dir)
    run_pipeline(
        "drift_watch",
        {
            "current_root": str(window),
            "encoder_uri": outputs["encoder"],
            "reference_features_uri": outputs["features"],
            "projection_uri": outputs["projection"],
            "reference_root_uri": outputs["root"],
            "retrain_data_root": str(new_data),
            "overrides_json": json.dumps({**overrides, **FORCE_DRIFT}),
        },
        pipeline_root=tmp_path / "drift",
        work_dir=work_dir,
        alert_on_failure=True,  # as compiled: nested retraining inside the exit handler's sub-DAG
    )
    (run,) = (tmp_path / "drift").iterdir()
    assert (run / "drift-check" / "report").is_file()
    ended = json.loads((run / "alert-on-failure" / "executor_output.json").read_text())
    assert ended["parameterValues"]["Output"] is False  # the run succeeded: nothing to page about
    outcome = json.loads((run / "send-alert" / "outcome").read_text())
    assert outcome["reason"] == "no alert target configured"
    assert outcome["payload"]["alerts"][0]["labels"]["alertname"] == "ClipguardDataDrift"
    # the nested retraining registered a new student on the new data and re-gated it: the
    # champion, evaluated on another data version, was re-evaluated on the new test set first
    gate = json.loads(next(run.glob("gate-model*/decision")).read_text())
    assert gate["candidate_version"] == "2" and gate["passed"], gate["reasons"]
    (same_test_set,) = [c for c in gate["checks"] if c["kind"] == "same_test_set"]
    assert same_test_set["passed"] and "champion v1" in same_test_set["message"]
    assert "re-evaluated" in same_test_set["message"]
    (reeval,) = run.glob("gate-model*/champion_evaluation/champion-v1/metrics_test.json")
    assert gate["champion_metrics"]["ap"] == pytest.approx(json.loads(reeval.read_text())["metrics"]["ap"])
    state = current("student", cfg=cfg)
    assert (state.champion, state.aliases.get("previous")) == ("2", "1")
    (build,) = run.glob("package-bento*/bento/build.json")
    assert json.loads(build.read_text())["labels"]["clipguard.registry_version"] == "2"


def test_extraction_fans_out_over_shards_and_merges_on_the_local_runner(tmp_path: Path) -> None:
    """The training pipelines' extraction steps (``add_extract_steps``: ParallelFor over the
    config's shards, ``dsl.Collected`` into ``merge-features``) under kfp.local: one feature
    version, the same clips and embeddings as one unsharded extraction."""
    import torch
    from kfp import local

    from clipguard.encoders.pretrain import pretrain_encoders
    from clipguard.features.extract import extract_features
    from clipguard.features.store_format import read_clip_features
    from tests.encoders.conftest import TINY_OVERRIDES, tiny_config
    from tests.encoders.roots import build_validated_root
    from tests.pipelines.extract_only import extract_only

    cfg = tiny_config()
    root = build_validated_root(tmp_path / "root")
    encoder_dir = pretrain_encoders(root, cfg, "moco", tmp_path / "encoders", seed=0, progress=False).encoder_dir

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "kfp"))
    overrides = {**TINY_OVERRIDES, "features.extract_shards": 2, "features.torch_threads": 1}
    task = extract_only(root_uri=str(root), encoder_uri=str(encoder_dir), overrides_json=json.dumps(overrides))
    out = Path(task.output.path)
    assert task.output.metadata["shards"] == 2
    merged = read_clip_features(out / task.output.metadata["subdir"]).set_index("clip_id").sort_index()
    (run,) = (tmp_path / "kfp").iterdir()
    parts = [json.loads(p.read_text()) for p in sorted(run.glob("for-loop-*-iteration-*/extract-features/executor_output.json"))]
    assert len(parts) == 2  # one task per shard, each a disjoint subset
    shard_clips = [p["artifacts"]["metrics"]["artifacts"][0]["metadata"]["n_extracted"] for p in parts]
    assert sum(shard_clips) == 10 and min(shard_clips) > 0
    whole = extract_features(root, cfg, encoder_dir, tmp_path / "whole", progress=False)
    expected = read_clip_features(whole.features_dir).set_index("clip_id").sort_index()
    assert list(merged.index) == list(expected.index)
    got, want = (torch.tensor(list(df["clip_embedding"])) for df in (merged, expected))
    assert torch.allclose(got, want, atol=1e-5)
