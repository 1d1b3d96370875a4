"""Generate the synthetic multimodal corpus (clipguard.synth.generate_corpus)."""

from kfp import dsl
from kfp.dsl import Dataset, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def synth_corpus(
    corpus: Output[Dataset],
    seed: int = 0,
    clips: int = 0,
    days: int = 0,
    profile: str = "local",
    overrides_json: str = "{}",
) -> None:
    """Write MP4s + clip/pair manifests into the ``corpus`` artifact folder.

    ``clips``/``days`` of 0 take the config's defaults.
    """
    import json
    from pathlib import Path

    from clipguard.config import load_config
    from clipguard.synth import generate_corpus

    cfg = load_config(profile, {**json.loads(overrides_json), "seed": seed})
    summary = generate_corpus(Path(corpus.path), seed=seed, cfg=cfg, clips=clips or None, days=days or None)
    corpus.metadata.update({"seed": seed, "fingerprint": summary.fingerprint, "clips": summary.clips, "pairs": summary.pairs})
