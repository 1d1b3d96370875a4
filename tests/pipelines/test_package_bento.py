"""``package_bento``: a bento of the service, labelled with a registered student's versions."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from kfp.dsl import Artifact

from clipguard.config import Config
from clipguard.registry import registered_model_name
from components.package_bento.component import package_bento
from tests.registry.conftest import _migrated_db, _mlflow_env, _server, registry_cfg  # noqa: F401 - fixtures

LOADER = "clipguard.models.matchlite:MatchLiteForPairClassification.from_pretrained"


def register_tiny_student(directory: Path, cfg: Config, seed: int = 0, **lineage: str) -> str:
    """A tiny random MatchLite (sized by ``cfg.models``) registered as a ``student`` version with
    the given lineage; returns its version (the same seed and sizes give the same version)."""
    import torch

    from clipguard.models.matchlite import MatchLiteConfig, MatchLiteForPairClassification
    from clipguard.registry import Lineage, log_model

    torch.manual_seed(seed)
    MatchLiteForPairClassification(MatchLiteConfig.from_settings(cfg.models)).save_pretrained(directory)
    version = log_model(
        "student",
        directory / "model.safetensors",
        directory / "config.json",
        cfg=cfg,
        loader=LOADER,
        metrics={"ap": 0.9},
        lineage=Lineage(**lineage),
    )
    return str(version.version)


def test_package_bento_builds_a_labelled_bento(tmp_path: Path, registry_cfg: Config) -> None:  # noqa: F811
    version = register_tiny_student(
        tmp_path / "student", registry_cfg, data_version="dtiny", encoder_version="etiny", index_version="itiny"
    )
    bento = Artifact(name="bento", uri=str(tmp_path / "bento"))
    registry = registry_cfg.registry  # the step rebuilds the same config: local SQLite or the MLflow server
    overrides = {
        "work_dir": registry_cfg.work_dir,
        "registry.tracking_uri": registry.tracking_uri,
        "registry.experiment": registry.experiment,
        "registry.models": registry.models,
    }
    tag = package_bento.python_func(
        version=version, bento=bento, family="student", profile=registry_cfg.profile, overrides_json=json.dumps(overrides)
    )

    name, _, bento_version = tag.partition(":")
    assert name == "clipguard" and bento_version
    store = Path(registry_cfg.work_dir) / "bentoml"  # the default store: <work_dir>/bentoml
    spec = yaml.safe_load((store / "bentos" / name / bento_version / "bento.yaml").read_text())
    assert spec["service"] == "clipguard.serving.service:ClipGuard"
    labels = spec["labels"]
    assert labels["clipguard.model"] == registered_model_name("student", registry_cfg)
    assert labels["clipguard.registry_version"] == version
    assert labels["clipguard.data_version"] == "dtiny"
    assert labels["clipguard.encoder_version"] == "etiny"
    assert labels["clipguard.index_version"] == "itiny"
    assert labels["clipguard.gate"] == "not gated"
    assert labels["project"] == "clipguard"  # the bentofile's own labels are kept
    # the library and the policy are inside the bento; the registry database is not
    src = store / "bentos" / name / bento_version / "src"
    assert (src / "clipguard" / "serving" / "service.py").is_file()
    assert (src / "clipguard" / "registry" / "policy.yaml").is_file()
    assert (src / "clipguard" / "configs" / "local.yaml").is_file()
    assert not list(src.rglob("*.db"))

    build = json.loads((tmp_path / "bento" / "build.json").read_text())
    assert build["tag"] == tag and build["bentoml_home"] == str(store)
    assert Path(build["archive"]).is_file() and Path(build["archive"]).parent == tmp_path / "bento"
    assert bento.metadata["tag"] == tag and bento.metadata["clipguard.registry_version"] == version
