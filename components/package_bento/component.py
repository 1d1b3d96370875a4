"""Package the RCI service as a bento for a gated model version (clipguard.serving.package.build_bento)."""

from kfp import dsl
from kfp.dsl import Artifact, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def package_bento(
    version: str,
    bento: Output[Artifact],
    family: str = "student",
    profile: str = "local",
    overrides_json: str = "{}",
) -> str:
    """``bentoml build`` of the service (``bentofile.yaml``) labelled with registry ``version`` of
    ``family`` and its lineage; returns the bento tag.

    The bento lands in the bento store (``serving.bentoml_home``, default
    ``<work_dir>/bentoml``) and is exported into ``bento`` as ``<name>-<version>.bento``
    (``bentoml import`` reads it on another machine); ``build.json`` beside it holds the
    tag, the store and the labels.
    """
    import json
    from pathlib import Path

    from clipguard.config import load_config
    from clipguard.serving.package import build_bento

    cfg = load_config(profile, json.loads(overrides_json))
    result = build_bento(family, version, cfg=cfg, export_to=bento.path)
    Path(bento.path, "build.json").write_text(json.dumps(result.to_dict(), indent=2))
    bento.metadata.update(
        {"tag": result.tag, "bentoml_home": result.bentoml_home, "archive": Path(result.archive or "").name, **result.labels}
    )
    return result.tag
