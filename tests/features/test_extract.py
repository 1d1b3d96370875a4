"""Feature extraction on a tiny validated root (tiny encoders, real MiniLM)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from clipguard.encoders.pretrain import pretrain_encoders
from clipguard.features import extract as extract_mod
from clipguard.features.extract import extract_features
from clipguard.features.store_format import (
    CLIP_FEATURES_SCHEMA,
    FEATURES_FILE,
    QUARANTINE_FILE,
    TokenStore,
    load_tokens,
    read_clip_features,
)
from tests.encoders.conftest import tiny_config
from tests.encoders.roots import build_validated_root


@pytest.fixture(scope="module")
def cfg():
    return tiny_config()


@pytest.fixture(scope="module")
def master_root(tmp_path_factory) -> Path:
    return build_validated_root(tmp_path_factory.mktemp("extract_root"))


@pytest.fixture(scope="module")
def encoder_dir(master_root, tmp_path_factory, cfg) -> Path:
    out = tmp_path_factory.mktemp("encoders")
    return pretrain_encoders(master_root, cfg, "moco", out, seed=0, progress=False).encoder_dir


@pytest.fixture
def root(master_root, tmp_path) -> Path:
    r = tmp_path / "root"
    shutil.copytree(master_root, r)
    return r


def test_writes_arrays_and_parquet_with_the_schema(root, encoder_dir, tmp_path, cfg):
    r = extract_features(root, cfg, encoder_dir, tmp_path / "features", progress=False)
    clips = pd.read_parquet(root / "validated" / "clips.parquet")
    assert (r.n_in, r.n_extracted, r.n_skipped, r.n_quarantined) == (len(clips), len(clips), 0, 0)
    assert r.features_dir == tmp_path / "features" / r.encoder_version
    table = pq.read_table(r.features_dir / FEATURES_FILE)
    assert table.schema.equals(CLIP_FEATURES_SCHEMA, check_metadata=False)
    df = read_clip_features(r.features_dir).set_index("clip_id")
    assert set(df.index) == set(clips["clip_id"])
    # features carry the clip's own publication time, and lineage
    expected_ts = clips.set_index("clip_id")["event_timestamp"]
    assert (df["event_timestamp"] == expected_ts.loc[df.index]).all()
    assert (df["encoder_version"] == r.encoder_version).all() and (df["data_version"] == r.data_version).all()
    assert (df["array_file"].map(lambda f: (r.features_dir / f).is_file())).all()
    assert len(set(df["array_file"])) == 3  # 10 clips, 4 per shard
    assert {len(v) for v in df["text_pooled"]} == {384}
    assert {len(v) for v in df["clip_embedding"]} == {cfg.encoders.embedding_dim}
    assert df.loc["clip_moon", "has_audio"] == False  # noqa: E712 - numpy bool
    assert df.loc["clip_moon", "n_audio_tokens"] == 0
    assert (df.drop(index="clip_moon")["n_audio_tokens"] == 2).all()  # 2-s clips, 1 token per second
    assert (df["n_frames"] == 2).all()

    batch = load_tokens(r.features_dir, ["clip_moon", "clip_astronaut", "clip_moon"])
    dv = 2 * cfg.encoders.vision_embed_dim * (1 + cfg.encoders.vision_region_grid**2)  # pooled + 2 x 2 regions
    assert batch.tokens["visual"].shape == (3, 2, dv) and batch.tokens["visual"].dtype == torch.float32
    assert batch.tokens["audio"].shape == (3, 2, cfg.encoders.audio_d_model)
    assert batch.masks["audio"].tolist() == [[False, False], [True, True], [False, False]]
    n_text = int(df.loc["clip_astronaut", "n_text_tokens"])
    assert batch.lengths("text").tolist()[1] == n_text
    pooled = torch.tensor(df.loc["clip_astronaut", "visual_pooled"])
    assert torch.allclose(batch.tokens["visual"][1].mean(0), pooled, atol=1e-2)  # fp16 tokens
    with pytest.raises(KeyError, match="no features"):
        TokenStore(tmp_path / "features").load(["nope"])


def test_second_run_does_no_work(root, encoder_dir, tmp_path, cfg):
    out = tmp_path / "features"
    first = extract_features(root, cfg, encoder_dir, out, progress=False)
    stamp = (first.features_dir / FEATURES_FILE).stat().st_mtime_ns
    again = extract_features(root, cfg, encoder_dir, out, progress=False)
    assert (again.n_extracted, again.n_skipped, again.n_quarantined) == (0, first.n_in, 0)
    assert again.shards_written == [] and again.clips_per_second == 0.0
    assert (first.features_dir / FEATURES_FILE).stat().st_mtime_ns == stamp


def test_corrupt_video_is_quarantined_and_the_rest_extracted(root, encoder_dir, tmp_path, cfg):
    (root / "videos" / "coffee.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    out = tmp_path / "features"
    r = extract_features(root, cfg, encoder_dir, out, progress=False)
    assert (r.n_in, r.n_extracted, r.n_quarantined) == (10, 9, 1)
    assert r.n_in == r.n_extracted + r.n_skipped + r.n_quarantined
    q = pd.read_parquet(r.features_dir / QUARANTINE_FILE)
    assert q["clip_id"].tolist() == ["clip_coffee"] and q["reason"].tolist() == ["decode_error"]
    assert "coffee.mp4" in q["message"].iloc[0]
    assert "clip_coffee" not in set(read_clip_features(r.features_dir)["clip_id"])

    again = extract_features(root, cfg, encoder_dir, out, progress=False)  # unchanged media: not retried
    assert (again.n_extracted, again.n_skipped, again.n_quarantined) == (0, 9, 1)

    build_validated_root(tmp_path / "fresh")
    shutil.copy(tmp_path / "fresh" / "videos" / "coffee.mp4", root / "videos" / "coffee.mp4")
    fixed = extract_features(root, cfg, encoder_dir, out, progress=False)  # media changed: retried
    assert (fixed.n_extracted, fixed.n_skipped, fixed.n_quarantined) == (1, 9, 0)
    assert pd.read_parquet(r.features_dir / QUARANTINE_FILE).empty


def test_crash_midway_resumes_without_duplicates(root, encoder_dir, tmp_path, cfg, monkeypatch):
    out = tmp_path / "features"
    real_encode = extract_mod._encode
    calls = {"n": 0}

    def encode_then_crash(bundle, items):
        calls["n"] += 1
        if calls["n"] == 2:  # after the first shard (4 clips) is published
            raise KeyboardInterrupt
        return real_encode(bundle, items)

    monkeypatch.setattr(extract_mod, "_encode", encode_then_crash)
    with pytest.raises(KeyboardInterrupt):
        extract_features(root, cfg, encoder_dir, out, progress=False)
    monkeypatch.setattr(extract_mod, "_encode", real_encode)
    vdir = next(out.iterdir())
    orphan = vdir / "arrays" / "shard-00007.safetensors"  # a shard whose rows never committed
    orphan.write_bytes(b"partial")

    r = extract_features(root, cfg, encoder_dir, out, progress=False)
    assert (r.n_extracted, r.n_skipped) == (6, 4)
    assert not orphan.exists()
    df = read_clip_features(vdir)
    assert len(df) == 10 and df["clip_id"].is_unique
    assert not (vdir / "parts").exists() or not any((vdir / "parts").iterdir())
    store = TokenStore(vdir)
    assert len(store) == 10 and store.load(df["clip_id"]).tokens["text"].shape[0] == 10
    assert json.loads((vdir / "features.json").read_text())["clips"] == 10


def test_other_settings_in_the_same_directory_are_refused(root, encoder_dir, tmp_path, cfg):
    out = tmp_path / "features"
    extract_features(root, cfg, encoder_dir, out, progress=False)
    with pytest.raises(ValueError, match="text_max_tokens"):
        extract_features(root, tiny_config(**{"features.text_max_tokens": 8}), encoder_dir, out, progress=False)


def test_shards_merged_are_the_unsharded_features(root, encoder_dir, tmp_path, cfg):
    """Two shards, each resumable in its own folder, merge into the version one run writes:
    same clips, same values, every array readable through the merged rows."""
    from clipguard.features.extract import merge_feature_shards, shard_of

    whole = extract_features(root, cfg, encoder_dir, tmp_path / "whole", progress=False)
    ids = sorted(read_clip_features(whole.features_dir)["clip_id"])
    assert {shard_of(c, 2) for c in ids} == {0, 1}  # both shards get clips
    assert [shard_of(c, 2) for c in ids] == [shard_of(c, 2) for c in ids]  # stable
    parts = [extract_features(root, cfg, encoder_dir, tmp_path / f"part{i}", progress=False, shard=(i, 2)) for i in (1, 0)]
    assert sorted(p.n_in for p in parts) == sorted(sum(shard_of(c, 2) == i for c in ids) for i in (0, 1))
    assert sum(p.n_extracted for p in parts) == len(ids)
    again = extract_features(root, cfg, encoder_dir, tmp_path / "part0", progress=False, shard=(0, 2))
    assert again.n_extracted == 0 and again.n_skipped == parts[1].n_in  # a shard reruns idempotently
    with pytest.raises(ValueError, match="shard"):  # a folder holds one shard
        extract_features(root, cfg, encoder_dir, tmp_path / "part0", progress=False, shard=(1, 2))

    merged = merge_feature_shards([tmp_path / "part0", tmp_path / "part1"], tmp_path / "merged", root=root)
    assert (merged.n_shards, merged.n_in, merged.n_clips, merged.n_quarantined) == (2, len(ids), len(ids), 0)
    assert merged.encoder_version == whole.encoder_version and merged.data_version == whole.data_version
    a = read_clip_features(whole.features_dir).set_index("clip_id").sort_index()
    b = read_clip_features(merged.features_dir).set_index("clip_id").sort_index()
    assert list(b.index) == ids
    for column in ("clip_embedding", "visual_pooled", "text_pooled"):
        assert all(torch.allclose(torch.tensor(x), torch.tensor(y), atol=1e-5) for x, y in zip(a[column], b[column]))
    assert b["array_file"].map(lambda f: (merged.features_dir / f).is_file()).all()
    tokens_a = TokenStore(whole.features_dir).load(ids).tokens["visual"]
    tokens_b = TokenStore(merged.features_dir).load(ids).tokens["visual"]
    assert torch.equal(tokens_a, tokens_b)
    manifest = json.loads((merged.features_dir / "features.json").read_text())
    assert "shard" not in manifest["settings"] and manifest["clips"] == len(ids)
    assert manifest["last_run"]["data_version"] == whole.data_version
    # merging again gives the same version (replaced whole)
    assert merge_feature_shards([tmp_path / "part1", tmp_path / "part0"], tmp_path / "merged").n_clips == len(ids)


def test_merge_refuses_incomplete_or_mixed_shards(root, encoder_dir, tmp_path, cfg):
    from clipguard.features.extract import merge_feature_shards

    for i in (0, 1):
        extract_features(root, cfg, encoder_dir, tmp_path / f"part{i}", progress=False, shard=(i, 2))
    with pytest.raises(ValueError, match=r"shards 0\.\.1 of 2 exactly once"):
        merge_feature_shards([tmp_path / "part0"], tmp_path / "merged")
    with pytest.raises(ValueError, match=r"exactly once"):
        merge_feature_shards([tmp_path / "part0", tmp_path / "part0"], tmp_path / "merged")
    with pytest.raises(ValueError, match="not the finished output of a sharded extraction"):
        extract_features(root, cfg, encoder_dir, tmp_path / "whole", progress=False)
        merge_feature_shards([tmp_path / "whole", tmp_path / "part1"], tmp_path / "merged")
    other = tiny_config(**{"features.text_max_tokens": 8})
    extract_features(root, other, encoder_dir, tmp_path / "other1", progress=False, shard=(1, 2))
    with pytest.raises(ValueError, match="text_max_tokens"):
        merge_feature_shards([tmp_path / "part0", tmp_path / "other1"], tmp_path / "merged")
    # the root gained a clip no shard extracted: the merge says so instead of losing it
    clips = pd.read_parquet(root / "validated" / "clips.parquet")
    extra = clips.iloc[[0]].assign(clip_id="clip_late")
    pd.concat([clips, extra]).to_parquet(root / "validated" / "clips.parquet", index=False)
    with pytest.raises(ValueError, match="1 missing"):
        merge_feature_shards([tmp_path / "part0", tmp_path / "part1"], tmp_path / "merged", root=root)
    assert not (tmp_path / "merged").exists() or not any((tmp_path / "merged").iterdir())


def test_a_bad_shard_number_is_refused(root, encoder_dir, tmp_path, cfg):
    with pytest.raises(ValueError, match="shard 2 of 2"):
        extract_features(root, cfg, encoder_dir, tmp_path / "x", progress=False, shard=(2, 2))
