"""A pipeline of the training pipelines' extraction steps alone, for a local-runner test
(KFP reads real annotations: no ``from __future__ import annotations`` here)."""

from kfp import dsl
from kfp.dsl import Dataset, Model

from pipelines.training import add_extract_steps


@dsl.pipeline(name="extract-sharded")
def extract_only(root_uri: str, encoder_uri: str, profile: str = "local", overrides_json: str = "{}") -> Dataset:
    data = dsl.importer(artifact_uri=root_uri, artifact_class=Dataset, reimport=False)
    encoder = dsl.importer(artifact_uri=encoder_uri, artifact_class=Model, reimport=False)
    return add_extract_steps(data.output, encoder.output, profile, overrides_json).outputs["features"]
