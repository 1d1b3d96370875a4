"""Feast definitions of clipguard's clip features, for the ``feast`` CLI.

The objects are built by :func:`clipguard.features.store.clip_definitions`, the same
function the pipeline uses, so this repository and the KFP components register
identical entities and views. Which feature table (hence which encoder version) it
describes comes from the environment; see README.md:

- ``CLIPGUARD_FEATURE_TABLE``: ``<features_dir>/<encoder_version>/clip_features.parquet``
- ``CLIPGUARD_PROFILE`` (optional): config profile whose ``feast.ttl_days`` is used
"""

from __future__ import annotations

import os
from datetime import timedelta

from clipguard.config import load_config
from clipguard.features.store import clip_definitions

_table = os.environ.get("CLIPGUARD_FEATURE_TABLE")
if not _table:
    raise RuntimeError(
        "set CLIPGUARD_FEATURE_TABLE to the feature table to serve, "
        "e.g. <features_dir>/<encoder_version>/clip_features.parquet (see feature_repo/README.md)"
    )
_definitions = clip_definitions(_table, timedelta(days=load_config().feast.ttl_days))

clip = _definitions.clip
video = _definitions.video
clip_features = _definitions.source
clip_visual = _definitions.views["clip_visual"]
clip_audio = _definitions.views["clip_audio"]
clip_text = _definitions.views["clip_text"]
clip_embedding = _definitions.views["clip_embedding"]
