"""Component bodies called directly (``component.python_func``) where they need no heavy state."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest
from kfp.dsl import Dataset

from components import BASE_IMAGE
from components.assemble_root.component import assemble_root

COMPONENTS_DIR = Path(__file__).resolve().parents[2] / "components"


def test_assemble_root_links_media_and_takes_validated(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    (raw / "videos").mkdir(parents=True)
    (raw / "videos" / "a.mp4").write_bytes(b"\x00" * 64)
    (raw / "corpus.json").write_text("{}")
    (raw / "validated").mkdir()
    (raw / "validated" / "clips.parquet").write_bytes(b"stale")  # an old validation in the raw root
    validated = tmp_path / "validate-out"
    (validated / "validated").mkdir(parents=True)
    (validated / "validated" / "clips.parquet").write_bytes(b"fresh")

    root = Dataset(name="root", uri=str(tmp_path / "root"))
    version = assemble_root.python_func(
        raw=Dataset(name="raw", uri=str(raw), metadata={"seed": 3}),
        validated=Dataset(name="validated", uri=str(validated)),
        root=root,
    )
    out = tmp_path / "root"
    assert (out / "videos" / "a.mp4").stat().st_ino == (raw / "videos" / "a.mp4").stat().st_ino
    assert (out / "corpus.json").is_file()
    assert (out / "validated" / "clips.parquet").read_bytes() == b"fresh"
    assert version.startswith("d") and root.metadata == {"data_version": version, "seed": 3}


def test_the_exit_handler_pages_even_when_the_run_config_is_broken(tmp_path: Path) -> None:
    """A run can fail because its overrides do not load; the exit task then alerts to the
    target of the run's profile and says why."""
    import json
    import shutil

    from kfp.dsl import Metrics, PipelineTaskFinalStatus

    import clipguard.config
    from clipguard.monitoring.alerts import local_receiver
    from components.alert_on_failure.component import alert_on_failure

    status = PipelineTaskFinalStatus(
        state="FAILED",
        pipeline_job_resource_name="runs/42",
        pipeline_task_name="pipeline-run",
        error_code=9,
        error_message="Task pipeline-run failed.",
    )
    configs = tmp_path / "configs"
    shutil.copytree(clipguard.config.CONFIG_DIR, configs)
    with local_receiver() as inbox, pytest.MonkeyPatch.context() as mp:
        (configs / "paged.yaml").write_text(f"extends: local\nalerts:\n  webhook_url: {inbox.url}\n")
        mp.setattr(clipguard.config, "CONFIG_DIR", configs)
        metrics = Metrics(name="metrics", uri=str(tmp_path / "metrics"))
        delivered = alert_on_failure.python_func(
            status=status,
            metrics=metrics,
            pipeline="clipguard-training",
            profile="paged",
            overrides_json=json.dumps({"no_such_section.x": 1}),
        )
    assert delivered and metrics.metadata == {"alerts_delivered": 1, "alerts_refused": 0, "attempts": 1}
    (alert,) = inbox.requests[0]["alerts"]
    assert alert["labels"]["pipeline"] == "clipguard-training" and alert["annotations"]["run"] == "runs/42"
    description = alert["annotations"]["description"]
    assert description.startswith("Task pipeline-run failed.; its configuration does not load")
    assert description.endswith("(error code 9)")
    assert "no_such_section" in description


@pytest.mark.parametrize("folder", sorted(p.name for p in COMPONENTS_DIR.iterdir() if (p / "component.py").is_file()))
def test_every_component_has_a_readme_and_imports_clipguard_inside(folder: str) -> None:
    """Thin wrappers: one folder each with a README; the body imports the library itself
    (the function source is all that runs in the container)."""
    assert (COMPONENTS_DIR / folder / "README.md").is_file()
    module = importlib.import_module(f"components.{folder}.component")
    component = getattr(module, folder)
    source = inspect.getsource(component.python_func)
    assert "from clipguard" in source
    assert component.component_spec.implementation.container.image == BASE_IMAGE
