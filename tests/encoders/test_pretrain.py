import json
import math

import pandas as pd
import pytest
import torch

from clipguard.encoders import pretrain as pretrain_mod
from clipguard.encoders.bundle import ENCODER_FILE, EncoderBundle
from clipguard.encoders.pretrain import copy_retrieval_recall, embed_clips, pretrain_encoders
from tests.encoders.conftest import tiny_config


def _pairs(rows):
    return pd.DataFrame(rows, columns=["query_clip_id", "candidate_clip_id", "label"])


def test_recall_counts_ranks_and_ties_against_the_candidate():
    ids = ["q", "c", "x", "y"]
    emb = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.9, 0.436], [0.8, 0.6]])
    emb = torch.nn.functional.normalize(emb, dim=1)
    pairs = _pairs([("q", "c", 1), ("q", "x", 0), ("c", "outside", 1), ("z", "q", 1)])
    r = copy_retrieval_recall(ids, emb, pairs, ks=(1, 2, 3))
    # x scores higher than c, y ties with c: c ranks 3rd
    assert r["n_queries"] == 1 and r["n_candidate_outside"] == 1
    assert (r["recall@1"], r["recall@2"], r["recall@3"]) == (0.0, 0.0, 100.0)


def test_recall_without_queries_is_nan():
    r = copy_retrieval_recall(["a"], torch.ones(1, 2), _pairs([("a", "b", 0)]))
    assert r["n_queries"] == 0 and math.isnan(r["recall@5"])


def test_pretrain_writes_checkpoint_and_rerun_is_noop(validated_root, tmp_path, tiny_cfg):
    out = tmp_path / "enc"
    r = pretrain_encoders(validated_root, tiny_cfg, "moco_clip", out, seed=0, progress=False)
    assert not r.skipped and r.epochs_run == 1 and r.train_clips == 5
    assert r.encoder_dir == out / r.encoder_version
    for name in ("vision.safetensors", "audio.safetensors", "heads.safetensors", ENCODER_FILE):
        assert (r.encoder_dir / name).is_file()
    assert not (r.encoder_dir / "train").exists()
    meta = json.loads((r.encoder_dir / ENCODER_FILE).read_text())
    assert meta["complete"] and meta["mode"] == "moco_clip" and meta["data_version"] == r.data_version
    assert meta["metrics"]["n_queries"] == 2 and 0 <= meta["metrics"]["recall@5"] <= 100
    mtime = (r.encoder_dir / "vision.safetensors").stat().st_mtime_ns

    again = pretrain_encoders(validated_root, tiny_cfg, "moco_clip", out, seed=0, progress=False)
    assert again.skipped and again.epochs_run == 0 and again.encoder_version == r.encoder_version
    assert again.metrics == r.metrics
    assert (r.encoder_dir / "vision.safetensors").stat().st_mtime_ns == mtime

    other = pretrain_encoders(validated_root, tiny_cfg, "moco", out, seed=0, progress=False)
    assert other.encoder_version != r.encoder_version and not (other.encoder_dir / "heads.safetensors").exists()

    # the saved encoders reload offline and give the same embeddings
    bundle, loaded_meta = EncoderBundle.load(r.encoder_dir, tiny_cfg)
    assert loaded_meta["version"] == r.encoder_version
    frames = [torch.randint(0, 255, (3, 32, 32, 3), dtype=torch.uint8)]
    fresh = EncoderBundle.load(r.encoder_dir, tiny_cfg)[0]
    assert torch.allclose(embed_clips(bundle.vision, frames), embed_clips(fresh.vision, frames))


def test_interrupted_run_resumes_to_the_same_weights(validated_root, tmp_path, monkeypatch):
    cfg = tiny_config(**{"pretrain.epochs": 2})
    full = pretrain_encoders(validated_root, cfg, "moco_clip", tmp_path / "full", seed=1, progress=False)

    real_save = pretrain_mod._save_state

    def save_then_crash(directory, trainer, info):
        real_save(directory, trainer, info)
        if info["epoch"] == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(pretrain_mod, "_save_state", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        pretrain_encoders(validated_root, cfg, "moco_clip", tmp_path / "cut", seed=1, progress=False)
    monkeypatch.setattr(pretrain_mod, "_save_state", real_save)
    resumed = pretrain_encoders(validated_root, cfg, "moco_clip", tmp_path / "cut", seed=1, progress=False)

    assert resumed.resumed_from_epoch == 1 and resumed.epochs_run == 1
    assert resumed.encoder_version == full.encoder_version
    assert resumed.losses == pytest.approx(full.losses)
    from safetensors.torch import load_file

    a = load_file(str(full.encoder_dir / "vision.safetensors"))
    b = load_file(str(resumed.encoder_dir / "vision.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
