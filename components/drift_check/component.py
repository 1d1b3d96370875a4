"""Data-drift check of a traffic window against the training reference (clipguard.monitoring.drift.drift_report)."""

from typing import Optional

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Metrics, Model, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def drift_check(
    reference: Input[Dataset],
    current: Input[Dataset],
    projection: Input[Model],
    report: Output[HTML],
    result: Output[Artifact],
    metrics: Output[Metrics],
    reference_root: Optional[Input[Dataset]] = None,
    current_root: Optional[Input[Dataset]] = None,
    profile: str = "local",
    overrides_json: str = "{}",
) -> bool:
    """Evidently ``DataDriftPreset`` on the projected embeddings and clip statistics of the
    ``current`` features vs the ``reference`` features; returns ``drifted``, which drives
    the pipeline's ``dsl.If``.

    With the data roots (``reference_root``, ``current_root``: validated roots the features
    were extracted from), the reference is restricted to ``cfg.drift.reference_splits`` and
    the text groups (statistics, words new to the reference) are compared too; without
    them, whole feature tables are compared on the vector and audio columns only. Clips of
    the window that are also in the reference are left out of the reference.

    ``report`` is Evidently's HTML report; ``result`` holds its JSON snapshot and
    ``result.json`` (the :class:`~clipguard.monitoring.drift.DriftResult` the alert reads).
    """
    import json
    import shutil

    from clipguard.config import load_config
    from clipguard.monitoring.drift import RESULT_FILE, check_window

    cfg = load_config(profile, json.loads(overrides_json))
    decision = check_window(
        reference.path,
        current.path,
        projection.path,
        cfg.drift,
        result.path,
        reference_root=reference_root.path if reference_root is not None else None,
        current_root=current_root.path if current_root is not None else None,
    )
    shutil.copyfile(decision.html_path, report.path)
    metrics.log_metric("share_drifted", decision.share_drifted)
    metrics.log_metric("drifted_columns", len(decision.drifted_columns))
    metrics.log_metric("n_reference", decision.n_reference)
    metrics.log_metric("n_current", decision.n_current)
    result.metadata.update({"result_file": RESULT_FILE, "drifted": decision.drifted})
    return decision.drifted
