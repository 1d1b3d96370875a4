"""The RCI models of MatchLM2Lite: the MatchLM teacher, the MatchLite student and distillation.

* :mod:`clipguard.models.matchlm` — MatchLM (LLaVA-OneVision + Whisper audio, LoRA), its
  config and its input processor;
* :mod:`clipguard.models.matchlite` — MatchLite (BiXT, paired maps, ResNet-34) on cached
  encoder features, and the multi-task head both models share;
* :mod:`clipguard.models.kd` — multi-task cross-entropy and the distillation loss;
* :mod:`clipguard.models.frames` — dynamic frame allocation for a video pair;
* :mod:`clipguard.models.tokenizer` — the offline tokenizer with MatchLM's special tokens.

Names are imported lazily: ``transformers`` (which MatchLM and the tokenizer need) takes
seconds to import, and the student path must stay light.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "MatchLMConfig": "matchlm",
    "MatchLMForPairClassification": "matchlm",
    "MatchLMProcessor": "matchlm",
    "PairExample": "matchlm",
    "MatchLiteConfig": "matchlite",
    "MatchLiteForPairClassification": "matchlite",
    "ClipFeatures": "matchlite",
    "MultiTaskHead": "matchlite",
    "PairClassifierOutput": "matchlite",
    "DistillationLoss": "kd",
    "DistillationOutput": "kd",
    "multitask_cross_entropy": "kd",
    "IGNORE_INDEX": "kd",
    "PairFrames": "frames",
    "allocate_frame_counts": "frames",
    "allocate_pair_frames": "frames",
    "uniform_indices": "frames",
    "resample_indices": "frames",
    "token_indices": "frames",
    "load_tokenizer": "tokenizer",
    "special_token_ids": "tokenizer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
