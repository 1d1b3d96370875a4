"""Dynamic frame allocation for a video pair (MatchLM2Lite, Appendix A.2 and Table 3).

MatchLM sees both videos of a pair in one sequence, so their frames share one budget.
Instead of a static split (each video padded to the same length), frames are allocated
in proportion to the videos' lengths, with a guaranteed minimum for the shorter video
(fewer if it simply has fewer frames), and each video keeps uniformly spaced frames.

Lengths are counted in frames decoded at the sampling rate (1 fps in clipguard, so frames
and seconds coincide). Everything here is deterministic integer arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PairFrames:
    """Frame indices kept from the query (first) and candidate (second) video."""

    query: tuple[int, ...]
    candidate: tuple[int, ...]

    @property
    def counts(self) -> tuple[int, int]:
        return len(self.query), len(self.candidate)


def allocate_frame_counts(len_query: int, len_candidate: int, budget: int, min_frames: int) -> tuple[int, int]:
    """How many frames each video of a pair keeps (A.2, "dynamic frame allocation").

    * Both videos fit into ``budget``: every frame is kept.
    * Otherwise the budget is split in proportion to the lengths; the shorter video gets at
      least ``min(min_frames, its length)``, the longer one the rest (never more than it
      has; a remainder it cannot use goes back to the shorter video).

    The result never exceeds ``budget`` nor either video's length, and is symmetric in the
    two videos (swapping them swaps the counts).
    """
    if len_query < 0 or len_candidate < 0:
        raise ValueError(f"video lengths must be >= 0, got {len_query} and {len_candidate}")
    if budget < 2 or min_frames < 1 or 2 * min_frames > budget:
        raise ValueError(f"need budget >= 2 * min_frames >= 2, got budget={budget}, min_frames={min_frames}")
    total = len_query + len_candidate
    if total <= budget:
        return len_query, len_candidate
    query_is_short = len_query <= len_candidate
    short, long = (len_query, len_candidate) if query_is_short else (len_candidate, len_query)
    # Round half up so that the split does not depend on floating point.
    k_short = (2 * budget * short + total) // (2 * total)
    k_short = min(max(k_short, min(min_frames, short)), short)
    k_long = min(long, budget - k_short)
    k_short = min(short, budget - k_long)
    return (k_short, k_long) if query_is_short else (k_long, k_short)


def uniform_indices(length: int, keep: int) -> tuple[int, ...]:
    """``keep`` distinct, increasing, uniformly spaced indices into ``range(length)``.

    Index ``i`` is the centre of the ``i``-th of ``keep`` equal segments of the video, so the
    whole duration is covered and the first/last frames are not over-represented.
    """
    if not 0 <= keep <= length:
        raise ValueError(f"cannot keep {keep} of {length} frames")
    return tuple((2 * i + 1) * length // (2 * keep) for i in range(keep))


TIME_MODALITIES: tuple[str, ...] = ("visual", "audio")
"""Token axes that are time (one token per second): the ones :func:`token_indices` resamples."""


def resample_indices(length: int, keep: int) -> tuple[int, ...]:
    """Exactly ``keep`` increasing indices spread uniformly over ``range(length)``.

    Unlike :func:`uniform_indices` the clip may be shorter than ``keep``: its tokens are then
    repeated (nearest-neighbour resampling in time). Every clip of any length becomes
    ``keep`` tokens, so the token count says nothing about the clip's duration.
    """
    if length < 1 or keep < 1:
        raise ValueError(f"cannot resample {length} frames to {keep}")
    return tuple((2 * i + 1) * length // (2 * keep) for i in range(keep))


def token_indices(length: int, limit: int, resample: bool) -> tuple[int, ...]:
    """Which of a clip's ``length`` tokens a model with at most ``limit`` tokens reads.

    ``resample=False``: every token when they fit, else ``limit`` uniformly spaced ones.
    ``resample=True``: exactly ``limit`` tokens (:func:`resample_indices`), so that length
    carries no signal. A clip with no tokens (no audio track) stays empty either way.
    """
    if length == 0:
        return ()
    if resample:
        return resample_indices(length, limit)
    return uniform_indices(length, limit) if length > limit else tuple(range(length))


def allocate_pair_frames(len_query: int, len_candidate: int, budget: int, min_frames: int) -> PairFrames:
    """The frame indices MatchLM keeps from each video of a pair (counts, then uniform sampling)."""
    k_query, k_candidate = allocate_frame_counts(len_query, len_candidate, budget, min_frames)
    return PairFrames(uniform_indices(len_query, k_query), uniform_indices(len_candidate, k_candidate))
