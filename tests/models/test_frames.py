"""Dynamic frame allocation (MatchLM2Lite A.2)."""

from __future__ import annotations

import pytest

from clipguard.models.frames import (
    allocate_frame_counts,
    allocate_pair_frames,
    resample_indices,
    token_indices,
    uniform_indices,
)


@pytest.mark.parametrize("lengths", [(1, 1), (3, 100), (100, 3), (40, 40), (17, 60), (1, 500), (31, 33), (0, 50)])
@pytest.mark.parametrize("budget,min_frames", [(16, 4), (32, 8), (6, 3)])
def test_budget_and_lengths_respected(lengths: tuple[int, int], budget: int, min_frames: int) -> None:
    q, c = allocate_frame_counts(*lengths, budget, min_frames)
    assert q <= lengths[0] and c <= lengths[1]
    assert q + c == min(budget, sum(lengths))  # the budget is used whenever there are frames to fill it
    short = min(range(2), key=lambda i: lengths[i])
    assert (q, c)[short] >= min(min_frames, lengths[short])


def test_everything_kept_when_it_fits() -> None:
    assert allocate_frame_counts(5, 7, 16, 4) == (5, 7)


def test_proportional_split_and_minimum_for_the_shorter_video() -> None:
    assert allocate_frame_counts(30, 10, 16, 2) == (12, 4)  # 3:1 lengths -> 3:1 frames
    assert allocate_frame_counts(10, 30, 16, 2) == (4, 12)  # symmetric
    assert allocate_frame_counts(100, 5, 16, 4) == (12, 4)  # proportional share 0.76 -> minimum 4
    assert allocate_frame_counts(100, 2, 16, 4) == (14, 2)  # shorter than the minimum: all of it


def test_uniform_indices_are_deterministic_and_spread() -> None:
    assert uniform_indices(10, 5) == (1, 3, 5, 7, 9)
    assert uniform_indices(10, 10) == tuple(range(10))
    assert uniform_indices(7, 0) == ()
    idx = uniform_indices(1000, 16)
    assert idx == uniform_indices(1000, 16)
    assert all(b > a for a, b in zip(idx, idx[1:])) and idx[0] < 1000 / 16 and idx[-1] > 1000 - 1000 / 16
    with pytest.raises(ValueError):
        uniform_indices(3, 4)


def test_pair_frames() -> None:
    pair = allocate_pair_frames(30, 10, 16, 2)
    assert pair.counts == (12, 4)
    assert pair.candidate == (1, 3, 6, 8)
    assert pair == allocate_pair_frames(30, 10, 16, 2)


def test_invalid_budget() -> None:
    with pytest.raises(ValueError):
        allocate_frame_counts(10, 10, 6, 4)
    with pytest.raises(ValueError):
        allocate_frame_counts(-1, 10, 16, 4)


def test_resample_indices_hide_the_length() -> None:
    """Every clip becomes exactly ``keep`` tokens: short clips repeat frames, long ones are subsampled."""
    assert resample_indices(3, 6) == (0, 0, 1, 1, 2, 2)
    assert resample_indices(10, 5) == uniform_indices(10, 5)
    assert resample_indices(1, 4) == (0, 0, 0, 0)
    for length in (1, 2, 5, 24, 100):
        idx = resample_indices(length, 24)
        assert len(idx) == 24 and list(idx) == sorted(idx) and idx[-1] < length
    with pytest.raises(ValueError):
        resample_indices(0, 4)


def test_token_indices_modes() -> None:
    assert token_indices(5, 24, resample=False) == (0, 1, 2, 3, 4)
    assert token_indices(48, 24, resample=False) == uniform_indices(48, 24)
    assert len(token_indices(5, 24, resample=True)) == 24
    assert token_indices(0, 24, resample=True) == ()  # no audio track stays empty
