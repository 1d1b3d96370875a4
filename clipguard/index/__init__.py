"""The clip-embedding vector index (FAISS HNSW / IVF-PQ, sharded); see :mod:`clipguard.index.faiss_index`."""

from clipguard.index.faiss_index import (
    ClipIndex,
    IndexBuildResult,
    IndexIntegrityError,
    IndexParams,
    SearchResult,
    build_index,
    build_index_from_vectors,
    latest_index_dir,
    load_index,
    search,
)

__all__ = [
    "ClipIndex",
    "IndexBuildResult",
    "IndexIntegrityError",
    "IndexParams",
    "SearchResult",
    "build_index",
    "build_index_from_vectors",
    "latest_index_dir",
    "load_index",
    "search",
]
