"""The Feast feature store of clip features.

One place defines what Feast knows about clips: the entities ``clip`` (join key
``clip_id``) and ``video`` (join key ``video_uri``), the file source over the
extraction's feature table ``<features_dir>/<encoder_version>/clip_features.parquet``
and four feature views, one per modality plus the fused embedding:

============== =============================================================
view            features
============== =============================================================
clip_visual     visual_pooled, n_frames, array_file, encoder_version
clip_audio      audio_pooled, n_audio_tokens, has_audio, array_file, encoder_version
clip_text       text_pooled, n_text_tokens, array_file, encoder_version
clip_embedding  clip_embedding, video_uri, data_version, encoder_version
============== =============================================================

Pooled vectors are stored inline; the per-token matrices stay in the versioned
safetensors shards named by ``array_file`` (relative to
``<features_dir>/<encoder_version>``), ``n_*`` giving their lengths (see
``feature_repo/README.md`` for why).

Each encoder version is its own Feast **project** (:func:`project_name`) whose file
source is that version's feature table, so versions never collide in the registry or
in the online store, and Feast's de-duplication of rows with the same
``(clip_id, event_timestamp)`` never mixes two encoders' vectors.

The store is built in code (:func:`build_store`), so a KFP component needs no
``feature_store.yaml``; ``feature_repo/`` holds the same definitions for the ``feast``
CLI. Feast is imported inside the functions: it takes seconds to import.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from clipguard.config import Config, FeastConfig
from clipguard.data.schema import VALIDATED_DIR, data_version
from clipguard.features.store_format import CLIP_FEATURES_SCHEMA, FEATURES_FILE, resolve_features_dir

if TYPE_CHECKING:
    from feast import Entity, FeatureStore, FeatureView, FileSource, RepoConfig

FEATURE_TABLE_FILE = FEATURES_FILE
"""Name of the extraction's feature table inside ``<features_dir>/<encoder_version>/``."""

PAIRS_FILE = "pairs.parquet"
"""The validated pair manifest inside ``<root>/validated/``."""

ENTITY_CLIP = "clip"
ENTITY_VIDEO = "video"
SOURCE_NAME = "clip_features"

VIEW_FEATURES: dict[str, tuple[str, ...]] = {
    "clip_visual": ("visual_pooled", "n_frames", "array_file", "encoder_version"),
    "clip_audio": ("audio_pooled", "n_audio_tokens", "has_audio", "array_file", "encoder_version"),
    "clip_text": ("text_pooled", "n_text_tokens", "array_file", "encoder_version"),
    "clip_embedding": ("clip_embedding", "video_uri", "data_version", "encoder_version"),
}
"""Feature view name -> its features (columns of the feature table)."""

VIEW_NAMES: tuple[str, ...] = tuple(VIEW_FEATURES)

VIEW_VECTOR: dict[str, str] = {
    "clip_visual": "visual_pooled",
    "clip_audio": "audio_pooled",
    "clip_text": "text_pooled",
    "clip_embedding": "clip_embedding",
}
"""The pooled vector of each view; a null vector means the view has no row for the clip."""

VIEW_DESCRIPTIONS: dict[str, str] = {
    "clip_visual": "Pooled frame features of the frozen vision encoder; frame tokens in array_file.",
    "clip_audio": "Pooled audio features of the frozen audio encoder; audio tokens in array_file.",
    "clip_text": "Pooled title/OCR/ASR sentence features; text tokens in array_file.",
    "clip_embedding": "Fused clip embedding used for retrieval, with the clip's video and lineage.",
}

FEATURE_TABLE_COLUMNS: dict[str, pa.DataType] = {f.name: f.type for f in CLIP_FEATURES_SCHEMA}
"""The feature table contract (one row per clip and encoder version)."""


# --------------------------------------------------------------------------- the table


def feature_table_path(features_dir: str | Path, encoder_version: str) -> Path:
    """``<features_dir>/<encoder_version>/clip_features.parquet``."""
    return Path(features_dir) / encoder_version / FEATURE_TABLE_FILE


def _type_ok(actual: pa.DataType, expected: pa.DataType) -> bool:
    if pa.types.is_timestamp(expected):
        return pa.types.is_timestamp(actual)
    if pa.types.is_list(expected):
        is_list = pa.types.is_list(actual) or pa.types.is_large_list(actual) or pa.types.is_fixed_size_list(actual)
        return is_list and actual.value_type == expected.value_type
    if pa.types.is_integer(expected):
        return pa.types.is_integer(actual)
    if pa.types.is_string(expected):
        return pa.types.is_string(actual) or pa.types.is_large_string(actual)
    return actual == expected


def validate_feature_table(path: str | Path) -> str:
    """Check a feature table against the contract and return its encoder version.

    Raises:
        FileNotFoundError: the table does not exist.
        ValueError: columns are missing or mistyped, the table mixes encoder versions
            or is empty, or two rows share ``(clip_id, event_timestamp,
            created_timestamp)`` (Feast would keep an arbitrary one of them).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"feature table {path} does not exist (run feature extraction first)")
    schema = pq.read_schema(path)
    missing = [c for c in FEATURE_TABLE_COLUMNS if c not in schema.names]
    if missing:
        raise ValueError(f"feature table {path} is missing columns: {', '.join(missing)}")
    wrong = [
        f"{c} ({schema.field(c).type}, expected {t})"
        for c, t in FEATURE_TABLE_COLUMNS.items()
        if not _type_ok(schema.field(c).type, t)
    ]
    if wrong:
        raise ValueError(f"feature table {path} has columns of the wrong type: {', '.join(wrong)}")

    keys = pq.read_table(path, columns=["clip_id", "event_timestamp", "created_timestamp", "encoder_version"]).to_pandas()
    if keys.empty:
        raise ValueError(f"feature table {path} has no rows")
    versions = sorted(keys["encoder_version"].dropna().unique())
    if len(versions) != 1 or keys["encoder_version"].isna().any():
        raise ValueError(
            f"feature table {path} must hold exactly one encoder_version, found {versions}"
            + (" and nulls" if keys["encoder_version"].isna().any() else "")
        )
    null_cols = [c for c in ("clip_id", "event_timestamp") if keys[c].isna().any()]
    if null_cols:
        raise ValueError(f"feature table {path} has null values in: {', '.join(null_cols)}")
    dup = keys.duplicated(["clip_id", "event_timestamp", "created_timestamp"], keep=False)
    if dup.any():
        ids = sorted(keys.loc[dup, "clip_id"].unique())
        shown = ", ".join(ids[:10]) + (f" (+{len(ids) - 10} more)" if len(ids) > 10 else "")
        raise ValueError(
            f"feature table {path} has several rows with the same (clip_id, event_timestamp, "
            f"created_timestamp); Feast would keep an arbitrary one. Clips: {shown}"
        )
    return str(versions[0])


def project_name(encoder_version: str) -> str:
    """The Feast project of an encoder version: ``clipguard_<version>``.

    Feast project names allow letters, digits and ``_`` only; other characters become
    ``_`` and a short hash of the original keeps, e.g., ``v1.0`` and ``v1_0`` apart.
    """
    if not encoder_version:
        raise ValueError("encoder_version must be a non-empty string")
    safe = re.sub(r"[^A-Za-z0-9_]", "_", encoder_version)
    if safe != encoder_version:
        safe += "_" + hashlib.sha256(encoder_version.encode()).hexdigest()[:8]
    return f"clipguard_{safe}"


# --------------------------------------------------------------------------- definitions


@dataclass(frozen=True)
class ClipDefinitions:
    """The Feast objects of one feature table (what ``feast apply`` registers)."""

    clip: Entity
    video: Entity
    source: FileSource
    views: dict[str, FeatureView]

    def objects(self) -> list[Any]:
        """Everything to pass to ``FeatureStore.apply``."""
        return [self.clip, self.video, self.source, *self.views.values()]


def clip_definitions(feature_table: str | Path, ttl: timedelta) -> ClipDefinitions:
    """Entities, the file source over ``feature_table`` and the four clip feature views.

    Args:
        feature_table: the feature table; stored in the registry as an absolute path.
        ttl: feature view TTL. A label at time t joins the latest feature row stamped in
            ``[t - ttl, t]``; the first ``materialize_incremental`` loads rows stamped
            after ``now - ttl``. Clip features do not go stale (they are a function of
            the media and the encoder version), so the TTL only has to cover the gap
            between a clip's publication and its last label, and the corpus' age.
    """
    from feast import Entity, FeatureView, Field, FileSource, ValueType
    from feast.types import Array, Bool, FeastType, Float32, Int64, String

    dtypes: dict[str, FeastType] = {
        "visual_pooled": Array(Float32),
        "audio_pooled": Array(Float32),
        "text_pooled": Array(Float32),
        "clip_embedding": Array(Float32),
        "n_frames": Int64,
        "n_audio_tokens": Int64,
        "n_text_tokens": Int64,
        "has_audio": Bool,
        "array_file": String,
        "encoder_version": String,
        "data_version": String,
        "video_uri": String,
    }
    clip = Entity(
        name=ENTITY_CLIP,
        join_keys=["clip_id"],
        value_type=ValueType.STRING,
        description="A clip: a window of a video (clip manifest row).",
    )
    video = Entity(
        name=ENTITY_VIDEO,
        join_keys=["video_uri"],
        value_type=ValueType.STRING,
        description="A video file (media path relative to the data root); clip rows carry it.",
    )
    source = FileSource(
        name=SOURCE_NAME,
        path=str(Path(feature_table).resolve()),
        timestamp_field="event_timestamp",
        created_timestamp_column="created_timestamp",
        description="Pooled clip features of one encoder version (clip publish time = event time).",
    )
    views = {
        name: FeatureView(
            name=name,
            entities=[clip],
            ttl=ttl,
            schema=[Field(name=f, dtype=dtypes[f]) for f in features],
            source=source,
            online=True,
            description=VIEW_DESCRIPTIONS[name],
        )
        for name, features in VIEW_FEATURES.items()
    }
    return ClipDefinitions(clip=clip, video=video, source=source, views=views)


# --------------------------------------------------------------------------- the store


def feast_settings(project: str, store_dir: str | Path, cfg: FeastConfig) -> dict[str, Any]:
    """The ``RepoConfig`` keyword arguments (the content of a ``feature_store.yaml``).

    SQLite registry and online store files live in ``store_dir``; with
    ``cfg.registry_url`` the registry is that SQL database, with
    ``cfg.online_store == "redis"`` the online store is Redis.
    """
    store_dir = Path(store_dir).resolve()
    registry_path = cfg.registry_url or f"sqlite:///{(store_dir / cfg.registry_file).as_posix()}"
    if cfg.online_store == "redis":
        online: dict[str, Any] = {"type": "redis", "connection_string": cfg.redis_connection_string}
    else:
        online = {"type": "sqlite", "path": str(store_dir / cfg.online_store_file)}
    return {
        "project": project,
        "provider": "local",
        "registry": {
            "registry_type": "sql",
            "path": registry_path,
            "cache_ttl_seconds": cfg.registry_cache_ttl_seconds,
            "sqlalchemy_config_kwargs": {"echo": False, "pool_pre_ping": True},
        },
        "online_store": online,
        "offline_store": {"type": "file"},
        "entity_key_serialization_version": 3,
        "repo_path": str(store_dir),
    }


def repo_config(project: str, store_dir: str | Path, cfg: FeastConfig) -> RepoConfig:
    """A Feast ``RepoConfig`` built in code (see :func:`feast_settings`)."""
    from feast import RepoConfig

    return RepoConfig(**feast_settings(project, store_dir, cfg))


def build_store(
    feature_table: str | Path,
    store_dir: str | Path,
    cfg: FeastConfig | None = None,
    *,
    apply: bool = True,
) -> FeatureStore:
    """Open the feature store of ``feature_table`` (its encoder version's project).

    Args:
        feature_table: ``<features_dir>/<encoder_version>/clip_features.parquet``;
            validated against the contract (:func:`validate_feature_table`).
        store_dir: where the SQLite registry/online store live (created), e.g.
            ``<work_dir>/feast``; ignored for a SQL registry plus Redis.
        cfg: Feast settings (default :class:`~clipguard.config.FeastConfig`).
        apply: register the entities and views (idempotent: an unchanged definition
            keeps its materialization history). A reader that only serves online
            features from an applied registry passes ``False``.
    """
    from feast import FeatureStore

    cfg = cfg or FeastConfig()
    encoder_version = validate_feature_table(feature_table)
    if cfg.online_store == "sqlite" or cfg.registry_url is None:
        Path(store_dir).mkdir(parents=True, exist_ok=True)
    store = FeatureStore(config=repo_config(project_name(encoder_version), store_dir, cfg))
    if apply:
        store.apply(clip_definitions(feature_table, timedelta(days=cfg.ttl_days)).objects())
    return store


@dataclass(frozen=True)
class MaterializeReport:
    """What one :func:`materialize` call loaded into the online store."""

    project: str
    end_date: datetime
    intervals: dict[str, tuple[datetime, datetime]]
    """view -> the [start, end] window of event timestamps this call materialized
    (empty when ``end_date`` is not after the previous run's)."""
    clips: dict[str, int]
    """view -> distinct clips with a feature row in that window (rows written)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "end_date": self.end_date.isoformat(),
            "intervals": {k: [s.isoformat(), e.isoformat()] for k, (s, e) in self.intervals.items()},
            "clips": dict(self.clips),
        }


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts.astimezone(timezone.utc)


def materialize(
    store: FeatureStore,
    end_date: datetime | None = None,
    views: Sequence[str] | None = None,
) -> MaterializeReport:
    """Load new feature rows into the online store with ``materialize_incremental``.

    Each view resumes where its last materialization ended; the first run starts at
    ``now - ttl``. Rows stamped at or before an earlier ``end_date`` but written to
    the table later are not picked up (backfill them with ``store.materialize``).

    Args:
        store: from :func:`build_store`.
        end_date: materialize rows stamped up to this time (default: now; naive = UTC).
        views: feature views to materialize (default: all four).
    """
    from feast import FileSource

    end = _utc(end_date or datetime.now(timezone.utc))
    names = list(views or VIEW_NAMES)
    _check_views(names)
    store.materialize_incremental(end_date=end, feature_views=names)

    intervals: dict[str, tuple[datetime, datetime]] = {}
    clips: dict[str, int] = {}
    tables: dict[str, pd.Series] = {}
    for n in names:
        fv = store.get_feature_view(n)
        start, stop = (_utc(t) for t in fv.materialization_intervals[-1])
        intervals[n] = (start, stop)
        source = fv.batch_source
        if not isinstance(source, FileSource):
            raise TypeError(f"feature view {n} reads {type(source).__name__}, expected a FileSource")
        path = source.path
        if path not in tables:
            t = pq.read_table(path, columns=["clip_id", "event_timestamp"]).to_pandas()
            tables[path] = t.set_index(pd.to_datetime(t["event_timestamp"], utc=True))["clip_id"]
        ids = tables[path]
        clips[n] = int(ids[(ids.index >= start) & (ids.index <= stop)].nunique())
    return MaterializeReport(project=store.project, end_date=end, intervals=intervals, clips=clips)


def _check_views(views: Iterable[str]) -> None:
    unknown = [v for v in views if v not in VIEW_FEATURES]
    if unknown:
        raise ValueError(f"unknown feature views: {', '.join(unknown)} (known: {', '.join(VIEW_NAMES)})")


def feature_refs(views: Sequence[str] = VIEW_NAMES) -> list[str]:
    """Feast feature references (``view:feature``) of all features of ``views``."""
    _check_views(views)
    return [f"{v}:{f}" for v in views for f in VIEW_FEATURES[v]]


def online_features(
    store: FeatureStore,
    clip_ids: Sequence[str],
    views: Sequence[str] = VIEW_NAMES,
    features: Sequence[str] | None = None,
) -> dict[str, dict[str, Any] | None]:
    """Latest online features of clips, via ``get_online_features``.

    ``features`` limits the read to these features of ``views`` (default: all of them): Feast
    converts every value it returns, so a caller reads only what it uses. A feature several
    views carry (``array_file``, ``encoder_version``) is read from the first of ``views`` that has it.

    Returns:
        ``{clip_id: {feature: value}}`` in request order: pooled vectors as float32
        numpy arrays, ``n_*`` as ints, ``array_file``/``encoder_version``/... as
        strings. A view without a row for the clip contributes ``None`` values; a clip
        with no row in any requested view maps to ``None``.
    """
    views = list(views)
    _check_views(views)
    wanted = set(features) if features is not None else None
    if wanted is not None:
        unknown = sorted(wanted - {f for v in views for f in VIEW_FEATURES[v]})
        if unknown:
            raise ValueError(f"features {', '.join(unknown)} are in none of the views {', '.join(views)}")
    reads: dict[str, list[str]] = {}  # view -> the features read from it
    taken: set[str] = set()
    for v in views:
        reads[v] = [f for f in VIEW_FEATURES[v] if (wanted is None or f in wanted) and f not in taken]
        taken.update(reads[v])
    ids = list(dict.fromkeys(clip_ids))
    if not ids:
        return {}
    refs = [f"{v}:{f}" for v, fs in reads.items() for f in fs]
    response = store.get_online_features(features=refs, entity_rows={"clip_id": ids}, full_feature_names=True)
    columns = response.to_dict()  # Feast's own conversion of its response (None where a view has no row)
    vectors = set(VIEW_VECTOR.values())

    out: dict[str, dict[str, Any] | None] = {}
    for i, clip_id in enumerate(ids):
        row: dict[str, Any] = {}
        for v, fs in reads.items():
            for f in fs:
                value = columns[f"{v}__{f}"][i]
                row[f] = np.asarray(value, dtype=np.float32) if value is not None and f in vectors else value
        out[clip_id] = row if any(value is not None for value in row.values()) else None
    return out


# --------------------------------------------------------------------------- training set


@dataclass(frozen=True)
class TrainingSetReport:
    """Counts of one :func:`build_training_set` run."""

    path: str
    project: str
    pairs: int
    complete: int
    """pairs whose query and candidate both have a row in every requested view"""
    missing_query: int
    """pairs whose query clip lacks a feature row at the label time in some view"""
    missing_candidate: int
    """pairs whose candidate clip lacks a feature row at the label time in some view"""
    missing_by_column: dict[str, int] = field(default_factory=dict)
    """null count of each pooled-vector column, e.g. ``q_clip_embedding``"""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _historical(store: FeatureStore, keys: pd.DataFrame, views: list[str]) -> pd.DataFrame:
    """Point-in-time features of unique ``(clip_id, event_timestamp)`` keys.

    One ``get_historical_features`` call per view: Feast's file (dask) offline store
    re-hashes every column it carries at each step, including the vectors of the
    views already joined, so separate calls are ~1.7x faster than one. Feast keeps one
    output row per (entity, timestamp) and drops an entity row whose clip only has
    feature rows stamped after it; each result is re-joined onto ``keys``, so every key
    comes back, with nulls where Feast found no row.
    """
    out = keys.copy()
    for v in views:
        job = store.get_historical_features(entity_df=keys, features=feature_refs([v]), full_feature_names=True)
        found = job.to_df()
        found["event_timestamp"] = pd.to_datetime(found["event_timestamp"], utc=True).dt.as_unit("ns")
        merged = keys.merge(found, on=["clip_id", "event_timestamp"], how="left", validate="one_to_one")
        present = merged[f"{v}__{VIEW_VECTOR[v]}"].notna()
        for f in VIEW_FEATURES[v]:
            values = merged[f"{v}__{f}"].where(present, None)
            # Shared columns (array_file, encoder_version) come from the same row in
            # every view; take the first view that has it.
            out[f] = out[f].where(out[f].notna(), values) if f in out else values
    return out


def _arrow_column(values: pd.Series, dtype: pa.DataType) -> pa.Array:
    items = [None if v is None or (isinstance(v, float) and np.isnan(v)) else v for v in values]
    if pa.types.is_list(dtype):
        items = [None if v is None else np.asarray(v, dtype=np.float32) for v in items]
    return pa.array(items, type=dtype)


def build_training_set(
    root: str | Path,
    store: FeatureStore,
    out_path: str | Path,
    views: Sequence[str] = VIEW_NAMES,
) -> TrainingSetReport:
    """Join point-in-time query and candidate features onto the validated pairs.

    The entity rows are the pairs' clips at the pair's label time
    (``event_timestamp``): a pair labelled at t sees, for each clip, the latest feature
    row stamped in ``[t - ttl, t]`` and never a row stamped after t. Feature columns
    are prefixed ``q_`` (query clip) and ``c_`` (candidate clip), e.g.
    ``q_clip_embedding``; pair columns are kept as they are. A clip without a feature
    row at the label time gets nulls: such pairs are kept and counted, never dropped.

    Args:
        root: validated data root (reads ``<root>/validated/pairs.parquet``).
        store: from :func:`build_store` (applied).
        out_path: the training table (Parquet, written atomically).
        views: feature views to join (default: all four).
    """
    views = list(views)
    _check_views(views)
    pairs_path = Path(root) / VALIDATED_DIR / PAIRS_FILE
    if not pairs_path.is_file():
        raise FileNotFoundError(f"{pairs_path}: no validated pair manifest (run `clipguard data validate {root}`)")
    table = pq.read_table(pairs_path)
    needed = ["pair_id", "query_clip_id", "candidate_clip_id", "event_timestamp"]
    missing = [c for c in needed if c not in table.column_names]
    if missing:
        raise ValueError(f"pair manifest {pairs_path} is missing columns: {', '.join(missing)}")
    pairs = table.to_pandas()
    if pairs[needed].isna().any().any():
        bad = [c for c in needed if pairs[c].isna().any()]
        raise ValueError(f"pair manifest {pairs_path} has null values in: {', '.join(bad)}")
    label_time = pd.to_datetime(pairs["event_timestamp"], utc=True).dt.as_unit("ns")

    keys = (
        pd.concat(
            [
                pd.DataFrame({"clip_id": pairs[col].astype(str), "event_timestamp": label_time})
                for col in ("query_clip_id", "candidate_clip_id")
            ],
            ignore_index=True,
        )
        .drop_duplicates()
        .reset_index(drop=True)
    )
    features = _historical(store, keys, views)
    feature_cols = [c for c in features.columns if c not in ("clip_id", "event_timestamp")]

    out = pairs.copy()
    out["__ts"] = label_time
    side_missing: dict[str, pd.Series] = {}
    missing_by_column: dict[str, int] = {}
    for prefix, col in (("q_", "query_clip_id"), ("c_", "candidate_clip_id")):
        side = features.rename(columns={"clip_id": col, "event_timestamp": "__ts"})
        side = side.rename(columns={c: prefix + c for c in feature_cols})
        out = out.merge(side, on=[col, "__ts"], how="left", validate="many_to_one")
        nulls = pd.DataFrame({prefix + VIEW_VECTOR[v]: out[prefix + VIEW_VECTOR[v]].isna() for v in views})
        missing_by_column.update({k: int(s.sum()) for k, s in nulls.items()})
        side_missing[prefix] = nulls.any(axis=1)
    out = out.drop(columns="__ts")

    arrays = [table.column(c) for c in table.column_names]
    fields = list(table.schema)
    for prefix in ("q_", "c_"):
        for c in feature_cols:
            dtype = FEATURE_TABLE_COLUMNS[c]
            arrays.append(_arrow_column(out[prefix + c], dtype))
            fields.append(pa.field(prefix + c, dtype, nullable=True))
    report = TrainingSetReport(
        path=str(out_path),
        project=store.project,
        pairs=len(out),
        complete=int((~(side_missing["q_"] | side_missing["c_"])).sum()),
        missing_query=int(side_missing["q_"].sum()),
        missing_candidate=int(side_missing["c_"].sum()),
        missing_by_column=missing_by_column,
    )
    metadata = {
        b"clipguard.training_set": json.dumps(
            {"feast_project": store.project, "data_version": data_version(root), "views": views, **report.to_dict()}
        ).encode()
    }
    result = pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=metadata))
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    pq.write_table(result, tmp)
    os.replace(tmp, out_path)
    return report


# --------------------------------------------------------------------------- one call per pipeline step


def _configured_store(features_dir: str | Path, cfg: Config, *, apply: bool) -> FeatureStore:
    """:func:`build_store` of the feature version at ``features_dir`` in the store ``cfg.feast``
    names (``<work_dir>/<feast.dir>`` for the local SQLite store)."""
    table = resolve_features_dir(features_dir) / FEATURES_FILE
    return build_store(table, Path(cfg.work_dir) / cfg.feast.dir, cfg.feast, apply=apply)


def materialize_features(features_dir: str | Path, cfg: Config) -> MaterializeReport:
    """Apply the feature views of the feature version at ``features_dir`` (one Feast project
    per encoder version) and materialize them incrementally into the configured online store:
    the ``materialize_features`` step and ``clipguard features materialize``."""
    return materialize(_configured_store(features_dir, cfg, apply=True))


def training_set(
    root: str | Path,
    features_dir: str | Path,
    out_path: str | Path,
    cfg: Config,
    *,
    apply: bool = True,
) -> TrainingSetReport:
    """:func:`build_training_set` of ``root``'s pairs from the feature version at
    ``features_dir``: the ``training_set`` step and ``clipguard features training-set``.
    ``apply=False`` reads a registry whose views are applied already (after
    :func:`materialize_features`)."""
    return build_training_set(root, _configured_store(features_dir, cfg, apply=apply), out_path)
