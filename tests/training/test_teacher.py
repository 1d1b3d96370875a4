"""Teacher SFT, its decoded-media inputs, and the teacher-output cache (computed once)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clipguard.models.matchlm import MatchLMForPairClassification, PairExample
from clipguard.training.data import load_pairs
from clipguard.training.media import TeacherPairs, load_or_build_media
from clipguard.training.teacher import load_teacher, media_clip_ids, train_teacher
from clipguard.training.teacher_cache import cache_teacher, load_teacher_outputs
from tests.rci_fixtures import RCIWorld


@pytest.fixture
def count_teacher_forward(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    calls = {"pairs": 0, "batches": 0}
    original = MatchLMForPairClassification.forward

    def counting(self, *args, **kwargs):
        calls["batches"] += 1
        calls["pairs"] += int(kwargs["input_ids"].shape[0])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(MatchLMForPairClassification, "forward", counting)
    return calls


def test_teacher_batches_match_the_processor(trained_teacher, rci_world: RCIWorld, tmp_path) -> None:
    from clipguard.media.reader import decode_clip

    result, cfg = trained_teacher
    _, processor = load_teacher(result.model_dir)
    media = load_or_build_media(rci_world.root, cfg, processor, media_clip_ids(rci_world.root), tmp_path, progress=False)
    pairs = load_pairs(rci_world.root, ("val",))
    batch = TeacherPairs(pairs, media, processor, {}).collate([0, 3])

    def example(i: int) -> PairExample:
        row = pairs.iloc[i]
        audio = []
        for clip_id in (row["query_clip_id"], row["candidate_clip_id"]):
            clip = rci_world.clips.set_index("clip_id").loc[clip_id]
            audio.append(decode_clip(rci_world.root / clip["video_uri"], clip["start_s"], clip["end_s"]).audio)
        q, c = media.index[row["query_clip_id"]], media.index[row["candidate_clip_id"]]
        return PairExample(media.frames[q].numpy(), media.frames[c].numpy(), audio[0], audio[1], media.texts[q], media.texts[c])

    expected = processor([example(0), example(3)])
    for key in ("input_ids", "attention_mask", "pixel_values_videos", "frame_mask", "audio_mask"):
        assert torch.equal(batch[key], expected[key]), key
    assert torch.allclose(batch["audio_features"], expected["audio_features"], atol=2e-3)


def test_train_teacher_is_idempotent(trained_teacher, rci_world: RCIWorld, count_teacher_forward) -> None:
    result, cfg = trained_teacher
    assert not result.skipped and result.epochs_run == 1
    assert (result.model_dir / "model.safetensors").is_file() and (result.model_dir / "config.json").is_file()
    assert not (result.model_dir / "checkpoint").exists()
    again = train_teacher(rci_world.root, cfg, progress=False, track=False)
    assert again.skipped and again.version == result.version and again.history == result.history
    assert count_teacher_forward["batches"] == 0


def test_teacher_cache_is_computed_once(trained_teacher, rci_world: RCIWorld, tmp_path, count_teacher_forward) -> None:
    result, cfg = trained_teacher
    first = cache_teacher(result.model_dir, rci_world.root, cfg, tmp_path, splits=("train",), progress=False)
    n_train = len(load_pairs(rci_world.root, ("train",)))
    assert count_teacher_forward["pairs"] == n_train
    assert first.path.name == f"{result.version}-{first.data_version}"
    assert first.embedding.shape == (n_train, 32) and first.logits["rci"].shape == (n_train, 2)

    again = cache_teacher(result.model_dir, rci_world.root, cfg, tmp_path, splits=("train",), progress=False)
    assert count_teacher_forward["pairs"] == n_train  # the teacher did not run again
    assert torch.equal(again.embedding, first.embedding)

    more = cache_teacher(result.model_dir, rci_world.root, cfg, tmp_path, splits=("train", "val"), progress=False)
    n_val = len(load_pairs(rci_world.root, ("val",)))
    assert count_teacher_forward["pairs"] == n_train + n_val  # only the missing pairs
    assert len(more.pair_ids) == n_train + n_val
    reloaded = load_teacher_outputs(more.path)
    assert torch.equal(reloaded.logits["rci"][:n_train], first.logits["rci"])
    assert len(list(more.path.glob("outputs-*.safetensors"))) == 1

    # outputs equal a direct forward pass of the frozen teacher
    model, processor = load_teacher(result.model_dir)
    pairs = load_pairs(rci_world.root, ("val",))
    media = load_or_build_media(rci_world.root, cfg, processor, media_clip_ids(rci_world.root), tmp_path / "m", progress=False)
    batch = TeacherPairs(pairs, media, processor, {}).collate([0, 1])
    with torch.inference_mode():
        out = model(**{k: v for k, v in batch.items() if k not in ("positions", "labels")})
    targets = more.align(list(pairs["pair_id"][:2]))
    assert torch.allclose(targets.logits["rci"], out.logits["rci"], atol=1e-5)
    scores = more.scores(list(pairs["pair_id"][:2]))
    np.testing.assert_allclose(scores, out.logits["rci"].softmax(-1)[:, 1].numpy(), atol=1e-5)
