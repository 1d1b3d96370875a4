"""FAISS index of the clip embeddings (clipguard.index.build_index)."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def build_index(
    features: Input[Dataset],
    index: Output[Model],
    metrics: Output[Metrics],
    kind: str = "",
    profile: str = "local",
    overrides_json: str = "{}",
) -> str:
    """Build the HNSW (or IVF-PQ) index of every clip embedding in ``features``; returns its version.

    ``kind`` of "" takes ``cfg.index.kind``. The index lands in ``index/<index_version>/``.
    """
    import json
    from pathlib import Path

    from clipguard.config import load_config
    from clipguard.index import build_index as build

    cfg = load_config(profile, json.loads(overrides_json))
    result = build(Path(features.path), cfg, out_dir=Path(index.path), kind=kind or None, progress=False)
    for name in ("n_vectors", "n_shards", "dim", "bytes_per_vector", "seconds"):
        metrics.log_metric(name, getattr(result, name))
    index.metadata.update(
        {
            "subdir": result.index_dir.name,
            "index_version": result.version,
            "kind": result.kind,
            "encoder_version": result.encoder_version,
        }
    )
    return result.version
