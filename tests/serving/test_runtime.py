"""The serving runtime in-process (no BentoML): loading, scoring, search, uploads, reload, limits."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from clipguard.serving.errors import (
    ClipNotFoundError,
    DisabledError,
    IncompatibleModelError,
    NotReadyError,
    PayloadTooLargeError,
    UnprocessableMediaError,
)
from clipguard.serving.features import FeastFeatureSource, TokenReader
from clipguard.serving.middleware import UploadLimitMiddleware
from clipguard.serving.model import parse_model_uri
from clipguard.serving.runtime import ServingRuntime, config_from_arguments
from tests.registry.conftest import _server, server_registry  # noqa: F401  (fixture: the session's MLflow server)
from tests.serving.conftest import THRESHOLD, ServingWorld, save_student, world_config


@pytest.fixture(scope="module")
def runtime(pair_world: ServingWorld) -> ServingRuntime:
    rt = ServingRuntime(world_config(pair_world))
    rt.load()
    return rt


def test_config_from_bento_arguments_reads_values_as_yaml() -> None:
    cfg = config_from_arguments(
        {"profile": "local", "serving.batching": "false", "serving.max_batch_size": "8", "rci.model_uri": "models:/m@champion"}
    )
    assert cfg.serving.batching is False and cfg.serving.max_batch_size == 8
    assert cfg.rci.model_uri == "models:/m@champion" and cfg.profile == "local"
    env = {"CLIPGUARD_OVERRIDES": '{"serving.max_batch_size": 16, "serving.features_dir": "/data/features"}'}
    deployed = config_from_arguments({"serving.max_batch_size": "8"}, env)
    assert deployed.serving.max_batch_size == 16 and deployed.serving.features_dir == "/data/features"
    with pytest.raises(ValueError, match="JSON object"):
        config_from_arguments({}, {"CLIPGUARD_OVERRIDES": "[1]"})


def test_model_uris() -> None:
    alias = parse_model_uri("models:/clipguard-student@champion")
    assert (alias.registry_name, alias.alias, alias.follows_alias) == ("clipguard-student", "champion", True)
    pinned = parse_model_uri("models:/clipguard-student/3")
    assert (pinned.version, pinned.follows_alias) == ("3", False)
    assert parse_model_uri("runs/student").registry_name is None
    with pytest.raises(ValueError, match="must be models:/"):
        parse_model_uri("models:/clipguard-student/latest")


def test_scores_equal_evaluation_scores_and_carry_versions(runtime: ServingRuntime, pair_world: ServingWorld) -> None:
    from clipguard.training.student import load_student, score_pairs, student_dataset

    model = load_student(pair_world.student_dir)
    dataset = student_dataset(pair_world.base / "root", pair_world.features_dir, ("val",), model.config, model.config.tasks)
    expected = score_pairs(model, dataset, 8)
    pairs = list(zip(dataset.pairs["query_clip_id"], dataset.pairs["candidate_clip_id"]))
    served = runtime.score_pairs(pairs)
    np.testing.assert_allclose([s.score for s in served], expected, atol=1e-6)
    first = served[0]
    assert first.encoder_version == "e000test" and first.model_version.startswith("m")
    assert first.index_version is not None and first.index_version.startswith("i")
    assert first.threshold == THRESHOLD and all(s.label == (s.score >= THRESHOLD) for s in served)
    health = runtime.health()
    assert (
        health.status == "ready"
        and health.clips == len(pair_world.clip_ids)
        and health.threshold_source == "recorded with the model"
    )
    assert health.scored_pairs >= len(pairs) and health.reload == "fixed model: restart to change it"


def test_unknown_clips_are_named(runtime: ServingRuntime) -> None:
    with pytest.raises(ClipNotFoundError, match="'nope', 'gone'") as err:
        runtime.require_pairs([("train_src0", "nope"), ("gone", "train_src1")])
    assert err.value.clip_ids == ["nope", "gone"] and err.value.status == 404
    with pytest.raises(ClipNotFoundError):
        runtime.score_pairs([("train_src0", "nope")])


def test_search_excludes_the_query_and_finds_its_copy(runtime: ServingRuntime) -> None:
    found = runtime.search("train_src0", 3)
    ids = [c.clip_id for c in found.candidates]
    assert len(ids) == 3 and "train_src0" not in ids and ids[0] == "train_cpy0"
    assert [c.similarity for c in found.candidates] == sorted((c.similarity for c in found.candidates), reverse=True)
    assert found.index_version == runtime.health().index_version
    with pytest.raises(ClipNotFoundError):
        runtime.search("nope", 3)


def test_endpoints_without_their_piece_say_so(pair_world: ServingWorld, tmp_path: Path) -> None:
    rt = ServingRuntime(world_config(pair_world, **{"serving.index_dir": None}))
    with pytest.raises(NotReadyError, match="loading"):
        rt.score_pairs([("train_src0", "train_cpy0")])
    rt.load()
    with pytest.raises(DisabledError, match="without an index"):
        rt.search("train_src0", 3)
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    with pytest.raises(DisabledError, match="without an index"):
        rt.search_media(video, 3)
    with pytest.raises(DisabledError, match="media endpoints are off"):
        rt.score_media(video, video)
    assert rt.health().media is False


def test_a_model_of_another_encoder_or_width_is_refused_at_load(pair_world: ServingWorld, tmp_path: Path) -> None:
    other = shutil.copytree(pair_world.student_dir, tmp_path / "other")
    (other / "training.json").write_text(json.dumps({"version": "s-other", "features_version": "e-other"}))
    rt = ServingRuntime(world_config(pair_world, **{"rci.model_uri": str(other)}))
    with pytest.raises(IncompatibleModelError, match="e-other"):
        rt.load()
    wide_cfg = world_config(pair_world, **{"models.student.visual_dim": 99})
    wide = save_student(tmp_path / "wide", wide_cfg)
    with pytest.raises(IncompatibleModelError, match="visual tokens"):
        ServingRuntime(world_config(pair_world, **{"rci.model_uri": str(wide)})).load()
    failing = ServingRuntime(world_config(pair_world, **{"rci.model_uri": str(tmp_path / "missing")}))
    failing.start()
    failing.close()
    assert failing.health().status == "failed" and "missing" in (failing.health().detail or "")


def test_token_cache_is_bounded_lru(pair_world: ServingWorld, runtime: ServingRuntime) -> None:
    source = runtime.served.source
    reader = TokenReader(pair_world.features_dir, {"visual": 2, "text": 3}, cache_clips=2)
    tokens = reader.read(source.locate(["train_src0", "train_src1", "train_src2"]))
    assert set(tokens) == {"train_src0", "train_src1", "train_src2"}
    assert {tuple(t.shape)[0] <= 3 for c in tokens.values() for t in c.values()} == {True}
    assert reader.cached_clip_ids == ["train_src1", "train_src2"]
    reader.read(source.locate(["train_src1"]))
    assert reader.cached_clip_ids == ["train_src2", "train_src1"]


def test_uploads_are_decoded_encoded_and_scored(media_world: ServingWorld, tmp_path: Path) -> None:
    rt = ServingRuntime(world_config(media_world))
    rt.load()
    assert rt.health().media is True
    v = media_world.videos
    pair = rt.score_media(v["chelsea"], v["chelsea_mirror"], "a cat", "a cat")
    assert pair.query_clip_id is None and 0.0 <= pair.score <= 1.0 and pair.encoder_version == "etiny"
    found = rt.search_media(v["horse"], 3)
    assert found.candidates[0].clip_id == "clip_horse" and found.candidates[0].similarity == pytest.approx(1.0, abs=1e-3)
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00not a video" * 64)
    with pytest.raises(UnprocessableMediaError, match="not a decodable video"):
        rt.score_media(corrupt, v["horse"])
    small = ServingRuntime(world_config(media_world, **{"serving.max_upload_bytes": 100}))
    with pytest.raises(PayloadTooLargeError, match="'video' is"):
        small.check_upload("video", v["horse"])


def _check_feast_source(pair_world: ServingWorld, runtime: ServingRuntime, **store: Any) -> None:
    """Materialize the world's features into the Feast store ``store`` names, serve from it:
    the same scores and search results as the files source."""
    from clipguard.features.store import materialize_features

    cfg = world_config(pair_world, **store)
    report = materialize_features(pair_world.features_dir, cfg)
    assert report.clips["clip_embedding"] > 0
    feast = ServingRuntime(world_config(pair_world, **{"serving.feature_source": "feast", **store}))
    feast.load()
    assert isinstance(feast.served.source, FeastFeatureSource) and feast.health().clips is None
    pairs = [("train_src0", "train_cpy0"), ("val_src1", "train_cpy3")]
    assert [p.score for p in feast.score_pairs(pairs)] == pytest.approx([p.score for p in runtime.score_pairs(pairs)])
    assert [c.clip_id for c in feast.search("train_src0", 3).candidates] == [
        c.clip_id for c in runtime.search("train_src0", 3).candidates
    ]
    with pytest.raises(ClipNotFoundError):
        feast.require_pairs([("train_src0", "nope")])


@pytest.mark.slow
def test_feast_source_serves_the_same_scores(pair_world: ServingWorld, runtime: ServingRuntime) -> None:
    _check_feast_source(pair_world, runtime)


def test_the_service_reads_features_from_redis(pair_world: ServingWorld, runtime: ServingRuntime) -> None:
    """The cluster's store: the Redis online store and a SQL registry on PostgreSQL."""
    from tests.services import fresh_database, redis_connection_string

    with fresh_database("clipguard_feast") as registry_url:
        _check_feast_source(
            pair_world,
            runtime,
            **{
                "feast.online_store": "redis",
                "feast.redis_connection_string": redis_connection_string(),
                "feast.registry_url": registry_url,
            },
        )


def _asgi_call(app: UploadLimitMiddleware, path: str, chunks: list[bytes], declared: int | None) -> tuple[int, bool]:
    """Status sent and whether the inner app ran to completion."""
    sent: list[dict] = []
    inner_done = []

    async def inner(scope, receive, send):
        while True:
            message = await receive()
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        inner_done.append(True)

    app.app = inner
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]

    async def receive():
        return messages.pop(0)

    async def send(message):
        sent.append(message)

    headers = [(b"content-length", str(declared).encode())] if declared is not None else []
    asyncio.run(app({"type": "http", "path": path, "headers": headers}, receive, send))
    return sent[0]["status"], bool(inner_done)


def test_upload_limit_middleware() -> None:
    app = UploadLimitMiddleware(lambda *a: None, {"/rci/score_media": 10})
    assert _asgi_call(app, "/rci/score_media", [b"x" * 11], declared=11) == (413, False)  # refused unread
    assert _asgi_call(app, "/rci/score_media", [b"x" * 6, b"x" * 6], declared=None)[0] == 413  # chunked
    assert _asgi_call(app, "/rci/score_media", [b"x" * 10], declared=10) == (200, True)
    assert _asgi_call(app, "/rci/score", [b"x" * 100], declared=100) == (200, True)  # other routes unlimited


@pytest.fixture(params=["sqlite", "mlflow-server"])
def registry_world(
    request: pytest.FixtureRequest, pair_world: ServingWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> ServingWorld:
    """``pair_world`` on a fresh registry: an MLflow SQLite store in its work_dir, or names of
    its own on the session's MLflow server (PostgreSQL backend store, :mod:`tests.services`)."""
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    overrides = {**pair_world.overrides, "work_dir": str(tmp_path / "runs")}
    overrides.pop("rci.model_uri")  # the default: models:/clipguard-student@champion
    if request.param == "mlflow-server":
        registry = server_registry(request.getfixturevalue("_server"))
        student = registry["registry.models"]["student"]
        overrides |= {**registry, "rci.model_uri": f"models:/{student}@champion"}
    return ServingWorld(**{**pair_world.__dict__, "overrides": overrides})


def _register(cfg, student_dir: Path, threshold: float) -> str:
    from clipguard.registry import Lineage, log_model
    from clipguard.registry.register import STUDENT_LOADER

    version = log_model(
        "student",
        student_dir / "model.safetensors",
        student_dir / "config.json",
        cfg=cfg,
        loader=STUDENT_LOADER,
        metrics={"threshold": threshold},
        lineage=Lineage(encoder_version="e000test"),
    )
    return str(version.version)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_the_registry_champion_is_served_and_a_new_champion_is_swapped_in(registry_world: ServingWorld, tmp_path: Path) -> None:
    """The champion hot-reload, on SQLite and on a real MLflow server."""
    from clipguard.registry import promote, registered_model_name

    cfg = world_config(registry_world)
    name = registered_model_name("student", cfg)
    promote("student", _register(cfg, registry_world.student_dir, 0.3), force=True, cfg=cfg)
    rt = ServingRuntime(cfg)
    rt.load()
    pair = [("train_src0", "train_cpy0")]
    before = rt.score_pairs(pair)[0]
    assert (before.model_version, before.threshold) == (f"{name}/1", 0.3)
    assert f"alias 'champion' of '{name}'" in rt.health().reload
    assert rt.refresh() is False  # the alias has not moved

    second = save_student(tmp_path / "second", cfg, seed=1, threshold=None)
    promote("student", _register(cfg, second, 0.6), force=True, cfg=cfg)
    assert rt.refresh() is True
    after = rt.score_pairs(pair)[0]
    assert (after.model_version, after.threshold, rt.health().reloads) == (f"{name}/2", 0.6, 1)
    assert after.score != before.score


def test_load_freezes_the_loaded_heap_only_when_asked(pair_world: ServingWorld) -> None:
    import gc

    gc.unfreeze()
    try:
        ServingRuntime(world_config(pair_world, **{"serving.gc_freeze": False})).load()
        assert gc.get_freeze_count() == 0
        rt = ServingRuntime(world_config(pair_world))
        rt.load()
        frozen = gc.get_freeze_count()
        assert frozen > 10_000  # the model, the libraries, the features index: out of every full collection
        assert rt.score_pairs([(pair_world.clip_ids[0], pair_world.clip_ids[1])])[0].score >= 0
    finally:
        gc.unfreeze()


def test_writes_need_the_admin_token_and_are_disabled_without_one(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from clipguard.serving.middleware import ADMIN_TOKEN_ENV, WriteAuthMiddleware

    async def inner(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    def status(app: WriteAuthMiddleware, path: str, authorization: bytes | None = None) -> tuple[int, dict]:
        sent: list[dict] = []
        headers = [(b"authorization", authorization)] if authorization is not None else []

        async def send(message):
            sent.append(message)

        async def receive():
            return {"type": "http.request", "body": b"{}", "more_body": False}

        asyncio.run(app({"type": "http", "path": path, "headers": headers}, receive, send))
        body = sent[-1]["body"]
        return sent[0]["status"], (json.loads(body) if body != b"ok" else {})

    monkeypatch.delenv(ADMIN_TOKEN_ENV, raising=False)
    closed = WriteAuthMiddleware(inner, routes={"/rci/reload"})
    code, body = status(closed, "/rci/reload", b"Bearer anything")
    assert code == 403 and ADMIN_TOKEN_ENV in body["error"]
    assert status(closed, "/rci/score")[0] == 200  # reads are open

    monkeypatch.setenv(ADMIN_TOKEN_ENV, "s3cret")
    guarded = WriteAuthMiddleware(inner, routes={"/rci/reload"})
    assert status(guarded, "/rci/reload", b"Bearer s3cret")[0] == 200
    for bad in (None, b"Bearer s3cre", b"s3cret", b"Bearer s3cret "):
        assert status(guarded, "/rci/reload", bad)[0] == 401, bad
