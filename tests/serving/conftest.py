"""Fixtures of the serving tests: tiny students over tiny feature versions, an index, encoders.

* ``pair_world``: the synthetic RCI feature version of :mod:`tests.rci_fixtures` (48 clips,
  copies close to their sources), a tiny random student saved with ``save_pretrained``
  (threshold 0.42 in ``eval/metrics_test.json``) and an HNSW index over its embeddings.
* ``media_world``: real MP4s (:mod:`tests.encoders.roots`), untrained tiny encoders saved
  as an encoder directory, features extracted with them, a student sized for those features
  and an index: everything an upload needs.

``world_config`` turns a world into a :class:`~clipguard.config.Config` (in-process runtime
tests); ``world.arguments`` are the same settings as bento arguments (server tests).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch

from clipguard.config import Config, load_config
from clipguard.models.matchlite import MatchLiteConfig, MatchLiteForPairClassification
from tests.encoders.conftest import TINY_OVERRIDES as TINY_ENCODER_OVERRIDES
from tests.rci_fixtures import TINY_RCI_OVERRIDES, build_rci_root

THRESHOLD = 0.42
STUDENT_KEYS = ("models.",)


@dataclass
class ServingWorld:
    """A feature version, a student for it, an index over it, and the config that ties them."""

    base: Path
    features_dir: Path
    student_dir: Path
    index_dir: Path
    overrides: dict[str, Any]
    clip_ids: list[str]
    encoder_dir: Path | None = None
    videos: dict[str, Path] = field(default_factory=dict)

    @property
    def arguments(self) -> dict[str, Any]:
        """The world's settings as bento arguments (``profile`` + dotted config keys)."""
        return {"profile": "local", **self.overrides}


def world_config(world: ServingWorld, **extra: Any) -> Config:
    return load_config("local", {**world.overrides, **extra})


DATA_VERSION = "d000test"
"""the training data the test students name (``training.json``)"""


def save_student(directory: Path, cfg: Config, seed: int = 0, threshold: float | None = THRESHOLD) -> Path:
    """A tiny random MatchLite for ``cfg.models`` (with an evaluation threshold unless None)."""
    torch.manual_seed(seed)
    MatchLiteForPairClassification(MatchLiteConfig.from_settings(cfg.models)).eval().save_pretrained(directory)
    (directory / "training.json").write_text(json.dumps({"data_version": DATA_VERSION}))  # its lineage
    if threshold is not None:
        (directory / "eval").mkdir(exist_ok=True)
        (directory / "eval" / "metrics_test.json").write_text(json.dumps({"threshold": threshold}))
    return directory


def _index(features_dir: Path, cfg: Config, out: Path) -> Path:
    from clipguard.index.faiss_index import build_index

    return build_index(features_dir, cfg, out_dir=out, progress=False).index_dir


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """Tiny models gain nothing from intra-op threads, and a thread pool on a busy machine costs seconds."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def pair_world(tmp_path_factory: pytest.TempPathFactory) -> ServingWorld:
    base = tmp_path_factory.mktemp("pair_world")
    rci = build_rci_root(base, with_media=False)
    models = {k: v for k, v in TINY_RCI_OVERRIDES.items() if k.startswith(STUDENT_KEYS)}
    overrides: dict[str, Any] = {**models, "work_dir": str(base / "runs"), "serving.torch_threads": 1, "serving.workers": 1}
    cfg = load_config("local", overrides)
    student = save_student(base / "student", cfg)
    index = _index(rci.features_dir, cfg, base / "index")
    overrides.update(
        {"rci.model_uri": str(student), "serving.features_dir": str(rci.features_dir), "serving.index_dir": str(index)}
    )
    return ServingWorld(base, rci.features_dir, student, index, overrides, sorted(rci.clips["clip_id"]))


@pytest.fixture(scope="session")
def media_world(tmp_path_factory: pytest.TempPathFactory) -> ServingWorld:
    from clipguard.encoders.bundle import EncoderBundle
    from clipguard.features.extract import extract_features
    from tests.encoders.roots import build_validated_root

    base = tmp_path_factory.mktemp("media_world")
    root = build_validated_root(base / "root")
    enc_cfg = load_config("local", TINY_ENCODER_OVERRIDES)
    encoder_dir = EncoderBundle.from_config(enc_cfg, vision_seed=0).save(base / "encoders" / "etiny", {"version": "etiny"})
    features = extract_features(root, enc_cfg, encoder_dir, base / "features", progress=False).features_dir
    models = {k: v for k, v in TINY_RCI_OVERRIDES.items() if k.startswith(STUDENT_KEYS)}
    models.update(
        {
            "models.student.visual_dim": 2 * enc_cfg.encoders.vision_embed_dim * (1 + enc_cfg.encoders.vision_region_grid**2),
            "models.student.audio_dim": enc_cfg.encoders.audio_d_model,
            "models.student.text_dim": 384,  # MiniLM
        }
    )
    overrides: dict[str, Any] = {
        **TINY_ENCODER_OVERRIDES,
        **models,
        "work_dir": str(base / "runs"),
        "serving.torch_threads": 1,
        "serving.workers": 1,  # the tests read one worker's batch counters
    }
    cfg = load_config("local", overrides)
    student = save_student(base / "student", cfg)
    index = _index(features, cfg, base / "index")
    overrides.update(
        {
            "rci.model_uri": str(student),
            "serving.features_dir": str(features),
            "serving.index_dir": str(index),
            "serving.encoder_dir": str(encoder_dir),
        }
    )
    videos = {p.stem: p for p in sorted((root / "videos").glob("*.mp4"))}
    ids = sorted(f"clip_{name}" for name in videos)
    return ServingWorld(base, features, student, index, overrides, ids, encoder_dir, videos)
