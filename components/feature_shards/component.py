"""The shards the extraction step fans out over (clipguard.features.extract.shard_plan)."""

from typing import List

from kfp import dsl

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def feature_shards(profile: str = "local", overrides_json: str = "{}") -> List[int]:  # noqa: UP006 - KFP reads typing.List
    """``[0, 1, ..., features.extract_shards - 1]``: the items of the extraction's ``ParallelFor``."""
    import json

    from clipguard.config import load_config
    from clipguard.features.extract import shard_plan

    return shard_plan(load_config(profile, json.loads(overrides_json)))
