"""Pair labels, the feature bank, collation and class-balanced sampling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from clipguard.models.kd import IGNORE_INDEX
from clipguard.training.data import (
    EditVocabulary,
    FeatureBank,
    StudentPairs,
    class_balanced_sampler,
    edit_label,
    load_pairs,
    student_modalities,
    task_labels,
)
from tests.rci_fixtures import EDITS, RCIWorld

VOCAB = EditVocabulary(tuple(EDITS["train"]), tuple(EDITS["audio"]))


def test_edit_labels_follow_the_corpus_vocabulary() -> None:
    assert VOCAB.classes == ("none", "crop", "hflip")
    assert edit_label(["hflip", "crop"], 1, VOCAB) == 2  # first train family
    assert edit_label(["volume"], 1, VOCAB) == 0  # audio-only edit: no visual edit
    assert edit_label([], 1, VOCAB) == 0
    assert edit_label(["rotate"], 1, VOCAB) == IGNORE_INDEX  # held-out family: unknown class
    assert edit_label(["crop"], 0, VOCAB) == IGNORE_INDEX  # not a copy


def test_task_labels(rci_world: RCIWorld) -> None:
    pairs = load_pairs(rci_world.root, ("train",))
    labels = task_labels(pairs, {"rci": 2, "reason": 4, "edit": 3, "other": 5}, EditVocabulary.from_corpus(rci_world.root))
    assert labels["rci"].tolist() == pairs["label"].tolist()
    assert set(labels["reason"][pairs["label"] == 0]) == {3}  # "none"
    assert (labels["edit"][pairs["label"] == 0] == IGNORE_INDEX).all()
    assert (labels["other"] == IGNORE_INDEX).all()


def test_feature_bank_subsamples_and_masks(rci_world: RCIWorld) -> None:
    ids = ["train_src0", "train_src1", "val_cpy2"]
    bank = FeatureBank.load(rci_world.features_dir, ids, {"visual": 3, "text": 8})
    assert set(bank.tokens) == {"visual", "text"}
    assert bank.tokens["visual"].shape[:2] == (3, 3) and bank.tokens["visual"].dtype == torch.float16
    lengths = bank.masks["text"].sum(dim=1)
    assert (lengths <= 8).all() and (lengths >= 4).all()
    feats = bank.features(bank.rows(["val_cpy2", "train_src0"]))
    assert feats.audio is None and feats.visual.dtype == torch.float32
    assert torch.equal(feats.visual_mask[1], bank.masks["visual"][bank.index["train_src0"]])
    assert student_modalities("va") == ("visual", "audio") and student_modalities("vat") == ("visual", "audio", "text")


def test_collate_builds_pair_batches(rci_world: RCIWorld) -> None:
    pairs = load_pairs(rci_world.root, ("val",))
    clips = sorted(set(pairs["query_clip_id"]) | set(pairs["candidate_clip_id"]))
    bank = FeatureBank.load(rci_world.features_dir, clips, {"visual": 4, "audio": 3, "text": 5})
    ds = StudentPairs(pairs, bank, {"rci": pairs["label"].to_numpy()})
    b = ds.collate([2, 0])
    assert b.positions.tolist() == [2, 0]
    assert b.labels["rci"].tolist() == [pairs["label"][2], pairs["label"][0]]
    q = bank.features(bank.rows([pairs["query_clip_id"][2]]))
    assert torch.equal(b.query.visual[0], q.visual[0]) and b.candidate.text.shape == (2, 5, 14)


def test_class_balanced_sampler_draws_both_classes_equally() -> None:
    labels = np.array([1] * 5 + [0] * 95)
    sampler = class_balanced_sampler(labels, 20_000, torch.Generator().manual_seed(0))
    drawn = labels[list(sampler)]
    assert len(drawn) == 20_000 and abs(drawn.mean() - 0.5) < 0.02
    again = labels[list(class_balanced_sampler(labels, 20_000, torch.Generator().manual_seed(0)))]
    assert (drawn == again).all()


def test_load_pairs_is_sorted_and_filtered(rci_world: RCIWorld) -> None:
    pairs = load_pairs(rci_world.root, ("val", "test"))
    assert set(pairs["split"]) == {"val", "test"}
    assert pairs["pair_id"].is_monotonic_increasing and isinstance(pairs, pd.DataFrame)


def test_collate_swaps_a_random_half_reproducibly(rci_world: RCIWorld) -> None:
    pairs = load_pairs(rci_world.root, ("val",))
    clips = sorted(set(pairs["query_clip_id"]) | set(pairs["candidate_clip_id"]))
    bank = FeatureBank.load(rci_world.features_dir, clips, {"visual": 4})
    ds = StudentPairs(pairs, bank, {"rci": pairs["label"].to_numpy()})
    positions = list(range(len(pairs)))
    plain = ds.collate(positions)
    swapped = ds.collate(positions, swap_seed=3)
    again = ds.collate(positions, swap_seed=3)
    assert torch.equal(swapped.query.visual, again.query.visual)  # same seed + positions: same swaps
    same = [torch.equal(swapped.query.visual[i], plain.query.visual[i]) for i in positions]
    traded = [torch.equal(swapped.query.visual[i], plain.candidate.visual[i]) for i in positions]
    assert all(s or t for s, t in zip(same, traded))
    assert any(t and not s for s, t in zip(same, traded)), "no pair was swapped"
    assert torch.equal(swapped.labels["rci"], plain.labels["rci"])  # a label is symmetric


def test_feature_bank_resamples_time_axes(rci_world: RCIWorld) -> None:
    ids = ["train_src0", "train_src1", "val_cpy2"]
    bank = FeatureBank.load(rci_world.features_dir, ids, {"visual": 24, "text": 8}, resample=("visual",))
    assert bank.masks["visual"].all()  # every clip fills the canvas: its length is not visible
    plain = FeatureBank.load(rci_world.features_dir, ids, {"visual": 24, "text": 8})
    assert not plain.masks["visual"].all()
    assert torch.equal(bank.masks["text"], plain.masks["text"])  # text is not a time axis
