"""Baselines MatchLite is measured against: vPDQ / per-frame PDQ perceptual hashes and
clip-embedding cosine similarity. See :mod:`clipguard.baselines.scores` for the entry points
(evaluating them: :mod:`clipguard.eval.baselines`)."""

from clipguard.baselines.scores import (
    METHODS,
    baseline_pair_scores,
    baseline_scores,
    write_baseline_scores,
)

__all__ = ["METHODS", "baseline_pair_scores", "baseline_scores", "write_baseline_scores"]
