"""``data_prep``: synthetic corpus → validation → validated data root.

The corpus the other pipelines read (``training(data_root=...)``) and the small DAG the
local-runner test runs on a tiny corpus. With real media, skip it: ingest
(``clipguard data ingest``) and pass the data root to ``training`` directly.
"""

from kfp import dsl
from kfp.dsl import Dataset

from components.assemble_root.component import assemble_root
from components.synth_corpus.component import synth_corpus
from components.validate_data.component import validate_data


@dsl.pipeline(name="clipguard-data-prep", description="Synthetic corpus -> data-contract validation -> validated data root.")
def data_prep(
    seed: int = 0,
    clips: int = 0,
    days: int = 0,
    profile: str = "local",
    overrides_json: str = "{}",
) -> Dataset:
    """Returns the validated data root (media + ``validated/``); ``clips``/``days`` of 0 take
    the config's defaults (``synth.clips``, ``synth.days``)."""
    corpus = synth_corpus(seed=seed, clips=clips, days=days, profile=profile, overrides_json=overrides_json)
    validate = validate_data(raw=corpus.outputs["corpus"], profile=profile, overrides_json=overrides_json)
    return assemble_root(raw=corpus.outputs["corpus"], validated=validate.outputs["validated"]).outputs["root"]
