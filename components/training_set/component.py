"""Point-in-time training table of the labelled pairs from Feast (clipguard.features.store.build_training_set)."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def training_set(
    root: Input[Dataset],
    features: Input[Dataset],
    feast_store: Input[Artifact],
    pairs: Output[Dataset],
    metrics: Output[Metrics],
    profile: str = "local",
    overrides_json: str = "{}",
) -> None:
    """Join query and candidate features, as of each pair's label time, onto the validated pairs.

    ``feast_store`` (from :func:`materialize_features`) orders this step after the views are
    applied; the table is written to ``pairs`` (Parquet, ``q_*`` / ``c_*`` feature columns).
    """
    import json

    from clipguard.config import load_config
    from clipguard.features.store import training_set as join_training_set

    cfg = load_config(profile, json.loads(overrides_json))
    report = join_training_set(root.path, features.path, pairs.path, cfg, apply=False)
    for name in ("pairs", "complete", "missing_query", "missing_candidate"):
        metrics.log_metric(name, getattr(report, name))
    pairs.metadata.update({"project": report.project, "feast_project": feast_store.metadata.get("project", "")})
