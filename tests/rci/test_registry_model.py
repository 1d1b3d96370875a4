"""The default student: the registry champion (``models:/clipguard-student@champion``).

Uses a fresh MLflow SQLite store under the test's work_dir (a few seconds of migrations).
"""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from clipguard.rci.score import score_pairs
from clipguard.rci.student import ModelNotFoundError, load_student
from tests.rci.conftest import ENCODER_VERSION, rci_config

LOADER = "clipguard.models.matchlite:MatchLiteForPairClassification.from_pretrained"


@pytest.fixture
def local_registry(tmp_path, monkeypatch):
    """A config whose MLflow store is a fresh SQLite file under the test's work_dir."""
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    return rci_config(tmp_path / "runs")


def _register_champion(student_dir, cfg, metrics=None):
    """Register the fixture's student (trained on ENCODER_VERSION) and make it the champion."""
    import mlflow

    from clipguard.registry import Lineage, log_model, registered_model_name

    config = json.loads((student_dir / "config.json").read_text())
    mv = log_model(
        "student", student_dir / "model.safetensors", config, cfg=cfg, loader=LOADER, metrics=metrics,
        lineage=Lineage(encoder_version=ENCODER_VERSION),
    )  # fmt: skip
    name = registered_model_name("student", cfg)
    mlflow.MlflowClient().set_registered_model_alias(name, "champion", mv.version)
    return name, mv


def test_scores_with_the_registry_champion(rci_env, rci_media, tmp_path, local_registry):

    cfg = local_registry
    _, enc_dir, student_dir = rci_env
    shutil.copytree(enc_dir, tmp_path / "runs" / "encoders" / ENCODER_VERSION)  # the default location

    with pytest.raises(ModelNotFoundError, match="clipguard-student"):
        load_student(None, cfg)

    name, mv = _register_champion(student_dir, cfg, metrics={"threshold": 0.25})

    loaded = load_student(None, cfg)
    assert loaded.model_version == f"{name}/{mv.version}" and loaded.threshold == 0.25
    assert loaded.encoder_version == ENCODER_VERSION

    csv = rci_media / "pairs_registry.csv"
    pd.DataFrame({"query_path": ["videos/astronaut_copy.mp4"], "candidate_path": ["videos/astronaut.mp4"]}).to_csv(
        csv, index=False
    )
    result = score_pairs(csv, tmp_path / "s.csv", cfg, progress=False)
    df = pd.read_csv(tmp_path / "s.csv", keep_default_na=False)
    assert result.model_uri == "models:/clipguard-student@champion" and result.threshold == 0.25
    assert df.loc[0, "error"] == "" and df.loc[0, "model_version"] == f"{name}/{mv.version}"
    local = score_pairs(csv, tmp_path / "l.csv", cfg, model_uri=student_dir, progress=False)
    assert float(df.loc[0, "score"]) == pytest.approx(float(pd.read_csv(tmp_path / "l.csv").loc[0, "score"]), abs=1e-6)
    assert local.model_version == "stest"


def test_the_champion_carries_its_encoders(rci_env, rci_media, tmp_path, local_registry):
    """Registered encoders are found from the champion's link: no encoder_dir, none under work_dir."""
    import mlflow

    from clipguard.encoders.bundle import ENCODER_FILE, EncoderBundle
    from clipguard.registry import Lineage
    from clipguard.registry.encoders import register_encoder
    from clipguard.registry.pyfunc import file_sha256

    cfg = local_registry
    _, enc_dir, student_dir = rci_env
    csv = rci_media / "pairs_carried.csv"
    pd.DataFrame({"query_path": ["videos/astronaut_copy.mp4"], "candidate_path": ["videos/astronaut.mp4"]}).to_csv(
        csv, index=False
    )

    # a champion without registered encoders: the error says what is missing
    name, mv = _register_champion(student_dir, cfg)
    with pytest.raises(FileNotFoundError, match=f"{ENCODER_VERSION} is not registered"):
        score_pairs(csv, tmp_path / "none.csv", cfg, progress=False)

    enc = register_encoder(enc_dir, cfg=cfg)
    assert enc.tags["encoder_version"] == ENCODER_VERSION
    assert register_encoder(enc_dir, cfg=cfg).version == enc.version  # idempotent
    raw = mlflow.pyfunc.load_model(f"models:/{enc.name}/{enc.version}").get_raw_model()
    assert isinstance(raw, EncoderBundle)

    # found by its encoder_version tag, then by the student's link (the tag register_model sets)
    fallback = score_pairs(csv, tmp_path / "by_tag.csv", cfg, progress=False)
    assert fallback.n_scored == 1
    shutil.rmtree(tmp_path / "runs" / "encoders")
    link = Lineage(encoder_model=f"{enc.name}/{enc.version}").tags()["encoder_model"]
    mlflow.MlflowClient().set_model_version_tag(name, mv.version, "encoder_model", link)
    loaded = load_student(None, cfg)
    assert loaded.encoder_model == f"{enc.name}/{enc.version}"

    result = score_pairs(csv, tmp_path / "carried.csv", cfg, progress=False)
    fetched = tmp_path / "runs" / "encoders" / ENCODER_VERSION
    assert result.n_scored == 1 and (fetched / ENCODER_FILE).is_file()
    for f in enc_dir.glob("*.safetensors"):
        assert file_sha256(fetched / f.name) == file_sha256(f)
    local = score_pairs(csv, tmp_path / "local.csv", cfg, model_uri=student_dir, encoder_dir=enc_dir, progress=False)
    assert local.n_scored == 1
    carried = pd.read_csv(tmp_path / "carried.csv", keep_default_na=False)
    assert carried.loc[0, "error"] == ""
    assert float(carried.loc[0, "score"]) == pytest.approx(float(pd.read_csv(tmp_path / "local.csv").loc[0, "score"]), abs=1e-6)


def test_register_evaluated_model_links_the_encoders_and_the_lineage(rci_env, rci_media, tmp_path, local_registry):
    """What the register_model step calls: metrics from the evaluation report, lineage tags, and
    the encoders registered and linked, so the champion scores with no other flag."""
    import mlflow

    from clipguard.registry import registered_model_name
    from clipguard.registry.register import register_evaluated_model

    cfg = local_registry
    _, enc_dir, student_dir = rci_env
    report = tmp_path / "metrics_test.json"
    report.write_text(json.dumps({
        "data_version": "dreg", "features_version": ENCODER_VERSION, "model_version": "sreg",
        "metrics": {"ap": 0.91, "threshold": 0.3},
    }))  # fmt: skip
    mv = register_evaluated_model(student_dir, report, enc_dir, cfg, index_version="ireg")
    assert register_evaluated_model(student_dir, report, enc_dir, cfg).version == mv.version  # idempotent
    tags = mv.tags
    assert (tags["data_version"], tags["encoder_version"], tags["model_version"], tags["index_version"]) == (
        "dreg",
        ENCODER_VERSION,
        "sreg",
        "ireg",
    )
    assert tags["encoder_model"].startswith(registered_model_name("encoder", cfg) + "/")
    name = registered_model_name("student", cfg)
    mlflow.MlflowClient().set_registered_model_alias(name, "champion", mv.version)
    csv = rci_media / "pairs_evaluated.csv"
    pd.DataFrame({"query_path": ["videos/astronaut_copy.mp4"], "candidate_path": ["videos/astronaut.mp4"]}).to_csv(
        csv, index=False
    )
    result = score_pairs(csv, tmp_path / "scored.csv", cfg, progress=False)
    scored = pd.read_csv(tmp_path / "scored.csv", keep_default_na=False)
    assert result.n_scored == 1 and result.threshold == 0.3
    assert scored.loc[0, "data_version"] == "dreg" and scored.loc[0, "error"] == ""
