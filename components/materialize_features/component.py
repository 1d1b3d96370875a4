"""Register the clip features in Feast and load them into the online store (clipguard.features.store.materialize)."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def materialize_features(
    features: Input[Dataset],
    feast_store: Output[Artifact],
    metrics: Output[Metrics],
    profile: str = "local",
    overrides_json: str = "{}",
) -> str:
    """Apply the feature views of ``features`` (one Feast project per encoder version) and
    ``materialize_incremental`` them; returns the Feast project name.

    The registry and online store are the ones ``cfg.feast`` names (SQLite under
    ``<work_dir>/feast`` locally; a SQL registry and Redis on a cluster); ``feast_store``
    records the project and what this run materialized.
    """
    import json
    from pathlib import Path

    from clipguard.config import load_config
    from clipguard.features.store import materialize_features as materialize

    report = materialize(features.path, load_config(profile, json.loads(overrides_json)))
    Path(feast_store.path).write_text(json.dumps(report.to_dict(), indent=2))
    for view, clips in report.clips.items():
        metrics.log_metric(f"{view}_clips", clips)
    feast_store.metadata.update(
        {
            "project": report.project,
            "encoder_version": features.metadata.get("encoder_version", ""),
            "data_version": features.metadata.get("data_version", ""),
        }
    )
    return report.project
