"""Features: frozen-encoder extraction, the versioned feature files, and the Feast layer.

* :mod:`clipguard.features.store_format` — the on-disk contract of extracted features
  (Arrow schema of ``clip_features.parquet``, token shards, :func:`load_tokens`).
* :mod:`clipguard.features.extract` — :func:`extract_features` writes them.
* :mod:`clipguard.features.store` — the Feast feature store over them.

Submodules are imported explicitly (they pull in torch / feast), so importing this
package is cheap.
"""
