"""Staged rollout: a bank at rollout ``r`` applies to a fixed, hash-selected share ``r`` of queries.

A query's position in a bank's rollout is the first 8 bytes of SHA-256 of ``bank NUL query_id``
read as a fraction of 2**64; the bank applies when the position is below ``r``. So the choice is
stable per query id (the same query is always in or out), independent between banks (salted by
the bank name), and monotone: raising ``r`` from 0.1 to 0.5 keeps every query that was in.
``r = 0`` applies to no query and ``r = 1`` to all.
"""

from __future__ import annotations

import hashlib

__all__ = ["in_rollout", "rollout_position"]


def rollout_position(bank: str, query_id: str) -> float:
    """Where ``query_id`` falls in ``bank``'s rollout: a deterministic value in [0, 1)."""
    digest = hashlib.sha256(f"{bank}\0{query_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def in_rollout(bank: str, query_id: str, fraction: float) -> bool:
    """Whether ``bank`` at rollout ``fraction`` applies to the query ``query_id``."""
    return rollout_position(bank, query_id) < fraction
