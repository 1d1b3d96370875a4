"""Promotion gate: policy floors, no regression vs the champion (clipguard.registry.gate_version)."""

from kfp import dsl
from kfp.dsl import Artifact, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def gate_model(
    version: str,
    decision: Output[Artifact],
    family: str = "student",
    profile: str = "local",
    overrides_json: str = "{}",
) -> bool:
    """Gate registry version ``version`` of ``family`` against ``model_registry/policy.yaml``;
    returns whether it passed.

    Passing sets the ``challenger`` alias. The returned flag drives the pipeline's
    ``dsl.If``: a failed gate is a result, not an error. ``decision`` holds the JSON
    decision (every check, the reasons).
    """
    import json
    from pathlib import Path

    from clipguard.config import load_config
    from clipguard.registry import gate_version

    cfg = load_config(profile, json.loads(overrides_json))
    result = gate_version(family, version, cfg=cfg)
    Path(decision.path).write_text(json.dumps(result.to_dict(), indent=2, default=str))
    decision.metadata.update(
        {"family": family, "version": version, "passed": result.passed, "reasons": list(result.reasons)}
    )
    return result.passed
