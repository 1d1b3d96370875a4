"""Validate the clip/pair manifests and media (clipguard.data.validate.validate_manifests)."""

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Metrics, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def validate_data(
    raw: Input[Dataset],
    validated: Output[Dataset],
    report: Output[HTML],
    metrics: Output[Metrics],
    profile: str = "local",
    overrides_json: str = "{}",
) -> str:
    """Accepted rows, quarantine and report go to ``validated``; returns the data version.

    The media stay in ``raw``: downstream steps take both artifacts.
    """
    import json
    import shutil
    from pathlib import Path

    from clipguard.config import load_config
    from clipguard.data.validate import validate_manifests

    cfg = load_config(profile, json.loads(overrides_json))
    out = Path(validated.path) / "validated"
    result = validate_manifests(Path(raw.path), cfg, out_dir=out, progress=False)
    shutil.copyfile(out / "report.html", report.path)
    version = result.data_version  # computed once, by validation; every later step reads it
    sections = {"clips": result.clips, "pairs": result.pairs}
    for name, counts in sections.items():
        if counts is not None:
            metrics.log_metric(f"{name}_in", counts.rows_in)
            metrics.log_metric(f"{name}_accepted", counts.accepted)
            metrics.log_metric(f"{name}_quarantined", counts.quarantined)
    validated.metadata.update({"data_version": version, "data_root": raw.uri})
    return version
