"""Move the ``champion`` alias to a gated version (clipguard.registry.promote)."""

from kfp import dsl
from kfp.dsl import Artifact, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def promote_model(
    version: str,
    state: Output[Artifact],
    family: str = "student",
    profile: str = "local",
    overrides_json: str = "{}",
) -> str:
    """Make ``version`` the champion (the old champion becomes ``previous``); returns the champion.

    Refuses a version whose gate did not pass. ``state`` holds the family's aliases after
    the move (rollback: ``clipguard registry rollback``).
    """
    import json
    from pathlib import Path

    from clipguard.config import load_config
    from clipguard.registry import promote

    cfg = load_config(profile, json.loads(overrides_json))
    result = promote(family, version, cfg=cfg)
    Path(state.path).write_text(json.dumps(result.to_dict(), indent=2, default=str))
    state.metadata.update({"family": family, "champion": result.champion or ""})
    return result.champion or ""
