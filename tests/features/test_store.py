"""Tests of the Feast feature store (clipguard.features.store) and feature_repo/.

Every store lives under tmp_path; feature tables are small synthetic Parquet files with
the extraction's schema and random vectors. Timestamps are relative to now, because the
first ``materialize_incremental`` loads rows stamped after ``now - ttl``.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clipguard.config import FeastConfig
from clipguard.features.store import (
    FEATURE_TABLE_COLUMNS,
    VIEW_FEATURES,
    VIEW_NAMES,
    build_store,
    build_training_set,
    feast_settings,
    feature_table_path,
    materialize,
    online_features,
    project_name,
    validate_feature_table,
)
from tests.services import fresh_database, redis_connection_string

REPO_ROOT = Path(__file__).resolve().parents[2]
DIMS = {"visual_pooled": 16, "audio_pooled": 8, "text_pooled": 12, "clip_embedding": 6}
NOW = datetime.now(timezone.utc).replace(microsecond=0)
T0, T1, T2, T3 = (NOW - timedelta(days=d) for d in (10, 8, 6, 4))


def _rows(clip_ids: list[str], ts: datetime, seed: int, version: str = "enc-test") -> dict[str, list]:
    rng = np.random.default_rng(seed)
    n = len(clip_ids)
    rows: dict[str, list] = {
        "clip_id": clip_ids,
        "video_uri": [f"videos/{c}.mp4" for c in clip_ids],
        "event_timestamp": [ts] * n,
        "created_timestamp": [NOW] * n,
        "encoder_version": [version] * n,
        "data_version": ["dtest"] * n,
        "n_frames": [20] * n,
        "n_audio_tokens": [50] * n,
        "n_text_tokens": [7] * n,
        "has_audio": [i % 2 == 0 for i in range(n)],
        "array_file": [f"arrays/shard-{seed}.safetensors"] * n,
    }
    for name, dim in DIMS.items():
        rows[name] = list(rng.standard_normal((n, dim), dtype=np.float32))
    return rows


def _write(path: Path, *parts: dict[str, list]) -> Path:
    merged = {k: [v for p in parts for v in p[k]] for k in FEATURE_TABLE_COLUMNS}
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(merged, schema=pa.schema(FEATURE_TABLE_COLUMNS.items())), path)
    return path


def _vec(rows: dict[str, list], clip_id: str, name: str) -> np.ndarray:
    return rows[name][rows["clip_id"].index(clip_id)]


def _found(rows: dict[str, dict[str, Any] | None], clip_id: str) -> dict[str, Any]:
    row = rows[clip_id]
    assert row is not None, f"no online features for {clip_id}"
    return row


def _write_pairs(root: Path, pairs: list[tuple[str, str, str, datetime]]) -> None:
    table = pa.table(
        {
            "pair_id": [p[0] for p in pairs],
            "query_clip_id": [p[1] for p in pairs],
            "candidate_clip_id": [p[2] for p in pairs],
            "label": [i % 2 for i in range(len(pairs))],
            "reason": ["visual"] * len(pairs),
            "event_timestamp": pa.array([p[3] for p in pairs], pa.timestamp("us", tz="UTC")),
            "split": ["train"] * len(pairs),
            "edit_type": ["crop"] * len(pairs),
        }
    )
    (root / "validated").mkdir(parents=True, exist_ok=True)
    pq.write_table(table, root / "validated" / "pairs.parquet")


# --------------------------------------------------------------------------- contract


@pytest.fixture(params=["sqlite", "redis+postgres"])
def feast_cfg(request: pytest.FixtureRequest) -> Iterator[FeastConfig]:
    """The local store (SQLite registry + online store), or the cluster's: the Redis online
    store and a SQL registry on a fresh PostgreSQL database (:mod:`tests.services`)."""
    if request.param == "sqlite":
        yield FeastConfig()
        return
    with fresh_database("clipguard_feast") as registry_url:
        yield FeastConfig(online_store="redis", redis_connection_string=redis_connection_string(), registry_url=registry_url)


def test_feature_table_contract_errors(tmp_path: Path) -> None:
    good = _rows(["a", "b"], T0, 0)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        validate_feature_table(tmp_path / "nope.parquet")

    no_cols = {k: v for k, v in good.items() if k not in ("array_file", "n_frames")}
    pq.write_table(pa.table(no_cols), tmp_path / "cols.parquet")
    with pytest.raises(ValueError, match="missing columns: n_frames, array_file"):
        validate_feature_table(tmp_path / "cols.parquet")

    wrong = dict(good, n_frames=[1.5, 2.5])
    pq.write_table(pa.table(wrong), tmp_path / "types.parquet")
    with pytest.raises(ValueError, match="wrong type: n_frames"):
        validate_feature_table(tmp_path / "types.parquet")

    mixed = _write(tmp_path / "mixed.parquet", good, _rows(["c"], T0, 1, version="enc-other"))
    with pytest.raises(ValueError, match="exactly one encoder_version"):
        validate_feature_table(mixed)

    dup = _write(tmp_path / "dup.parquet", good, _rows(["b"], T0, 1))
    with pytest.raises(ValueError, match="Clips: b"):
        validate_feature_table(dup)

    ok = _write(feature_table_path(tmp_path / "features", "enc-test"), good, _rows(["a"], T2, 2))
    assert validate_feature_table(ok) == "enc-test"


def test_project_per_encoder_version() -> None:
    assert project_name("e1") == "clipguard_e1"
    assert project_name("v1.0") != project_name("v1_0")
    assert project_name("v1.0").replace("_", "").isalnum()


def test_cluster_settings_use_redis_and_sql_registry(tmp_path: Path) -> None:
    cfg = FeastConfig(
        online_store="redis",
        redis_connection_string="redis.feast:6379,db=0",
        registry_url="postgresql+psycopg://feast@postgres/feast",
    )
    s = feast_settings("clipguard_e1", tmp_path, cfg)
    assert s["online_store"] == {"type": "redis", "connection_string": "redis.feast:6379,db=0"}
    assert s["registry"]["registry_type"] == "sql"
    assert s["registry"]["path"] == "postgresql+psycopg://feast@postgres/feast"
    local = feast_settings("clipguard_e1", tmp_path, FeastConfig())
    assert local["registry"]["path"] == f"sqlite:///{(tmp_path / 'registry.db').resolve().as_posix()}"
    assert local["online_store"]["type"] == "sqlite"


# --------------------------------------------------------------------------- offline


def test_training_set_is_point_in_time_correct(tmp_path: Path, feast_cfg: FeastConfig) -> None:
    """X has features at t0 (A) and t2 (B); Y only at t2; Z and W at t0.

    A pair labelled at t1 must get A for X and nulls for Y (its only row is after the
    label); a pair labelled at t3 gets B. Pairs sharing (query clip, label time) all
    survive the join.
    """
    a = _rows(["X", "Z", "W"], T0, 0)
    b = _rows(["X", "Y"], T2, 1)
    table = _write(tmp_path / "features" / "enc-test" / "clip_features.parquet", a, b)
    store = build_store(table, tmp_path / "feast", feast_cfg)
    root = tmp_path / "corpus"
    _write_pairs(
        root,
        [
            ("p_t1", "X", "Z", T1),
            ("p_t1_same_query", "X", "W", T1),  # same (query, label time) as p_t1
            ("p_t3", "X", "Z", T3),
            ("p_future", "Y", "Z", T1),
            ("p_reverse", "Z", "Y", T3),
        ],
    )
    out = tmp_path / "train" / "pairs_features.parquet"
    report = build_training_set(root, store, out)

    assert (report.pairs, report.complete, report.missing_query, report.missing_candidate) == (5, 4, 1, 0)
    assert report.missing_by_column["q_clip_embedding"] == 1
    assert report.missing_by_column["c_visual_pooled"] == 0

    df = pq.read_table(out).to_pandas().set_index("pair_id")
    assert list(df.index) == ["p_t1", "p_t1_same_query", "p_t3", "p_future", "p_reverse"]
    np.testing.assert_array_equal(df.loc["p_t1", "q_clip_embedding"], _vec(a, "X", "clip_embedding"))
    np.testing.assert_array_equal(df.loc["p_t1_same_query", "q_visual_pooled"], _vec(a, "X", "visual_pooled"))
    np.testing.assert_array_equal(df.loc["p_t1_same_query", "c_text_pooled"], _vec(a, "W", "text_pooled"))
    np.testing.assert_array_equal(df.loc["p_t3", "q_clip_embedding"], _vec(b, "X", "clip_embedding"))
    np.testing.assert_array_equal(df.loc["p_t3", "q_audio_pooled"], _vec(b, "X", "audio_pooled"))
    np.testing.assert_array_equal(df.loc["p_t3", "c_clip_embedding"], _vec(a, "Z", "clip_embedding"))
    assert df.loc["p_t3", "q_array_file"] == "arrays/shard-1.safetensors"
    np.testing.assert_array_equal(df.loc["p_reverse", "c_clip_embedding"], _vec(b, "Y", "clip_embedding"))

    future = df.loc["p_future"]
    assert future[["q_clip_embedding", "q_visual_pooled", "q_n_frames", "q_array_file"]].isna().all()
    np.testing.assert_array_equal(future["c_clip_embedding"], _vec(a, "Z", "clip_embedding"))

    schema = pq.read_schema(out)
    assert schema.field("q_clip_embedding").type == pa.list_(pa.float32())
    assert schema.field("c_n_frames").type == FEATURE_TABLE_COLUMNS["n_frames"]
    assert schema.field("q_has_audio").type == pa.bool_()
    assert schema.field("edit_type").type == pa.string()  # extra pair columns are carried
    assert b"clipguard.training_set" in schema.metadata


def test_the_one_call_steps_use_the_configured_store(tmp_path: Path) -> None:
    """``materialize_features`` / ``training_set`` (what the components call) open the store
    ``cfg.feast`` names under ``work_dir`` and give what the composed calls give."""
    from clipguard.config import load_config
    from clipguard.features.store import materialize_features, training_set

    cfg = load_config("local", {"work_dir": str(tmp_path / "work")})
    table = _write(tmp_path / "features" / "enc-test" / "clip_features.parquet", _rows(["X", "Z"], T0, 0))
    root = tmp_path / "corpus"
    _write_pairs(root, [("p", "X", "Z", T1)])
    report = materialize_features(table.parent, cfg)
    assert report.clips["clip_embedding"] == 2 and (tmp_path / "work" / cfg.feast.dir).is_dir()
    joined = training_set(root, table.parent, tmp_path / "pairs.parquet", cfg, apply=False)
    assert (joined.pairs, joined.complete) == (1, 1)
    direct = build_training_set(
        root, build_store(table, tmp_path / "work" / cfg.feast.dir, cfg.feast), tmp_path / "direct.parquet"
    )
    assert joined.to_dict() | {"path": None} == direct.to_dict() | {"path": None}


def test_training_set_errors(tmp_path: Path) -> None:
    table = _write(tmp_path / "f" / "clip_features.parquet", _rows(["a"], T0, 0))
    store = build_store(table, tmp_path / "feast")
    with pytest.raises(FileNotFoundError, match="no validated pair manifest"):
        build_training_set(tmp_path / "empty", store, tmp_path / "o.parquet")
    with pytest.raises(ValueError, match="unknown feature views: clip_colour"):
        build_training_set(tmp_path / "empty", store, tmp_path / "o.parquet", views=["clip_colour"])


# --------------------------------------------------------------------------- online


def test_online_reads_latest_vectors_after_materialize(tmp_path: Path, feast_cfg: FeastConfig) -> None:
    ids = [f"clip{i:03d}" for i in range(70)]
    old = _rows(ids, T0, 0)
    new = _rows(ids[:5], T2, 1)
    table = _write(tmp_path / "features" / "enc-test" / "clip_features.parquet", old, new)
    store = build_store(table, tmp_path / "feast", feast_cfg)
    report = materialize(store, end_date=NOW)
    assert set(report.intervals) == set(VIEW_NAMES)
    assert report.clips["clip_embedding"] == 70

    one = online_features(store, ["clip000"])
    assert list(one) == ["clip000"]
    row = _found(one, "clip000")
    for name in DIMS:
        assert row[name].dtype == np.float32
        np.testing.assert_array_equal(row[name], _vec(new, "clip000", name))  # t2 beats t0
    assert row["array_file"] == "arrays/shard-1.safetensors"
    assert (row["n_frames"], row["n_audio_tokens"], row["n_text_tokens"]) == (20, 50, 7)
    assert row["encoder_version"] == "enc-test" and row["video_uri"] == "videos/clip000.mp4"

    batch = ids[:64]
    many = online_features(store, batch)
    assert list(many) == batch
    for cid in batch:
        latest = new if cid in ids[:5] else old
        np.testing.assert_array_equal(_found(many, cid)["clip_embedding"], _vec(latest, cid, "clip_embedding"))

    partial = online_features(store, ["clip069", "unknown"], views=["clip_text"])
    assert partial["unknown"] is None
    assert set(_found(partial, "clip069")) == set(VIEW_FEATURES["clip_text"])
    # only what a caller uses (the service): a shared feature is read from the first view
    few = online_features(store, batch[:3] + ["unknown"], ["clip_embedding", "clip_visual"], ["clip_embedding", "array_file"])
    assert set(_found(few, batch[0])) == {"clip_embedding", "array_file"} and few["unknown"] is None
    np.testing.assert_array_equal(_found(few, batch[0])["clip_embedding"], _found(many, batch[0])["clip_embedding"])
    assert _found(few, batch[0])["array_file"] == _found(many, batch[0])["array_file"]
    with pytest.raises(ValueError, match="in none of the views"):
        online_features(store, batch[:1], ["clip_text"], ["clip_embedding"])


def test_materialize_is_incremental(tmp_path: Path, feast_cfg: FeastConfig) -> None:
    table = tmp_path / "features" / "enc-test" / "clip_features.parquet"
    first = _rows(["a", "b"], T0, 0)
    _write(table, first)
    store = build_store(table, tmp_path / "feast", feast_cfg)
    materialize(store, end_date=T1)
    assert online_features(store, ["c"])["c"] is None

    late = _rows(["c"], T2, 1)
    _write(table, first, late)
    store = build_store(table, tmp_path / "feast", feast_cfg)  # re-apply keeps the history
    report = materialize(store, end_date=T3)
    assert report.intervals["clip_visual"][0] == T1  # resumes where the last run ended
    assert report.clips["clip_visual"] == 1
    np.testing.assert_array_equal(_found(online_features(store, ["c"]), "c")["visual_pooled"], late["visual_pooled"][0])


def test_encoder_versions_are_separate_projects(tmp_path: Path, feast_cfg: FeastConfig) -> None:
    t1 = _write(feature_table_path(tmp_path / "features", "e1"), _rows(["a"], T0, 0, version="e1"))
    t2 = _write(feature_table_path(tmp_path / "features", "e2"), _rows(["a"], T0, 1, version="e2"))
    s1 = build_store(t1, tmp_path / "feast", feast_cfg)
    materialize(s1, end_date=NOW)
    s2 = build_store(t2, tmp_path / "feast", feast_cfg)
    materialize(s2, end_date=NOW)
    assert (s1.project, s2.project) == ("clipguard_e1", "clipguard_e2")
    v1 = _found(online_features(s1, ["a"]), "a")["clip_embedding"]
    v2 = _found(online_features(s2, ["a"]), "a")["clip_embedding"]
    assert not np.array_equal(v1, v2)


# --------------------------------------------------------------------------- feature_repo


def test_feature_repo_is_a_feast_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from feast.repo_config import load_repo_config
    from feast.repo_operations import parse_repo

    table = _write(feature_table_path(tmp_path / "features", "e1"), _rows(["a"], T0, 0, version="e1"))
    monkeypatch.setenv("CLIPGUARD_FEATURE_TABLE", str(table))
    monkeypatch.setenv("CLIPGUARD_FEAST_PROJECT", project_name("e1"))
    monkeypatch.setenv("CLIPGUARD_FEAST_DIR", str(tmp_path / "feast"))
    repo = REPO_ROOT / "feature_repo"

    config = load_repo_config(repo, repo / "feature_store.yaml")
    assert config.project == "clipguard_e1"
    assert config.online_store.type == "sqlite"
    assert config.registry.path == f"sqlite:///{tmp_path / 'feast' / 'registry.db'}"

    spec = importlib.util.spec_from_file_location("clipguard_feature_repo_definitions", repo / "definitions.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    assert module.clip_features.path == str(table.resolve())

    contents = parse_repo(repo)
    assert sorted(fv.name for fv in contents.feature_views) == sorted(VIEW_NAMES)
    assert {"clip", "video"} <= {e.name for e in contents.entities}
