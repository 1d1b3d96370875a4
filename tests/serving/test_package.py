"""Bento packaging errors: nothing to package, a broken build file."""

from __future__ import annotations

from pathlib import Path

import pytest

from clipguard.config import Config
from clipguard.registry import UnknownVersionError, registered_model_name
from clipguard.serving.package import BentoBuildError, bentoml_home, build_bento
from tests.pipelines.test_package_bento import register_tiny_student
from tests.registry.conftest import _migrated_db, _mlflow_env, _server, registry_cfg  # noqa: F401 - fixtures


def test_default_store_is_under_work_dir(registry_cfg: Config) -> None:  # noqa: F811
    assert bentoml_home(registry_cfg) == Path(registry_cfg.work_dir).absolute() / "bentoml"


def test_no_champion_and_no_version_is_refused(registry_cfg: Config) -> None:  # noqa: F811
    with pytest.raises(BentoBuildError, match=f"{registered_model_name('student', registry_cfg)}: it has no champion"):
        build_bento("student", cfg=registry_cfg)


def test_unknown_version_is_refused(tmp_path: Path, registry_cfg: Config) -> None:  # noqa: F811
    register_tiny_student(tmp_path / "student", registry_cfg)
    with pytest.raises(UnknownVersionError, match="no version '7'"):
        build_bento("student", "7", cfg=registry_cfg)


def test_failed_build_names_the_model_and_the_reason(tmp_path: Path, registry_cfg: Config) -> None:  # noqa: F811
    version = register_tiny_student(tmp_path / "student", registry_cfg)
    bentofile = tmp_path / "bentofile.yaml"
    bentofile.write_text('service: "clipguard.serving.no_such_module:ClipGuard"\n')
    with pytest.raises(
        BentoBuildError, match=rf"packaging {registered_model_name('student', registry_cfg)} v{version}: `bentoml build` exited"
    ) as err:
        build_bento("student", version, cfg=registry_cfg, bentofile=bentofile)
    assert "no_such_module" in str(err.value)
