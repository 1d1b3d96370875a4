"""Promotion gate: policy floors, no regression vs the champion (clipguard.registry.gate_version)."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def gate_model(
    version: str,
    root: Input[Dataset],
    features: Input[Dataset],
    decision: Output[Artifact],
    champion_evaluation: Output[Artifact],
    family: str = "student",
    split: str = "test",
    profile: str = "local",
    overrides_json: str = "{}",
) -> bool:
    """Gate registry version ``version`` of ``family`` against ``clipguard/registry/policy.yaml``;
    returns whether it passed.

    When the champion was evaluated on another data version than the candidate, it is
    first re-evaluated on the candidate's ``split`` (``root`` + ``features``, the inputs the
    candidate's evaluation read); that report lands in ``champion_evaluation``. Passing sets
    the ``challenger`` alias. The returned flag drives the pipeline's ``dsl.If``: a failed
    gate is a result, not an error. ``decision`` holds the JSON decision (every check, the
    reasons).
    """
    import json
    from pathlib import Path

    from clipguard.config import load_config
    from clipguard.registry import gate_version
    from clipguard.registry.champion import champion_reevaluator

    cfg = load_config(profile, json.loads(overrides_json))
    Path(champion_evaluation.path).mkdir(parents=True, exist_ok=True)  # empty unless re-evaluated
    reevaluate = champion_reevaluator(
        family, Path(root.path), Path(features.path), cfg=cfg, split=split, out_dir=Path(champion_evaluation.path)
    )
    result = gate_version(family, version, cfg=cfg, reevaluate_champion=reevaluate)
    Path(decision.path).write_text(json.dumps(result.to_dict(), indent=2, default=str))
    decision.metadata.update({"family": family, "version": version, "passed": result.passed, "reasons": list(result.reasons)})
    return result.passed
