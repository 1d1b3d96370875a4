"""Errors of the bank operations: each names the bank (and references) and the reason.

The classes also derive from the built-in error a caller would expect (``LookupError`` for
what does not exist, ``ValueError`` for a bad value), so the service maps them to 404 / 409 /
400 and the CLI to exit code 2 without knowing every subclass.
"""

from __future__ import annotations

from collections.abc import Sequence

SHOWN_IDS = 10
"""references named in one message (the rest are counted)"""


def _ids(ids: Sequence[str]) -> str:
    shown = ", ".join(repr(i) for i in ids[:SHOWN_IDS])
    more = f" (+{len(ids) - SHOWN_IDS} more)" if len(ids) > SHOWN_IDS else ""
    return shown + more


class BankError(Exception):
    """Any refused bank operation; nothing was changed (the transaction was rolled back)."""


class UnknownBankError(BankError, LookupError):
    """No bank of that name."""

    def __init__(self, bank: str) -> None:
        self.bank = bank
        super().__init__(f"no bank named {bank!r} (clipguard banks list shows the banks)")


class UnknownReferenceError(BankError, LookupError):
    """References that are not in the bank (or were removed from it)."""

    def __init__(self, bank: str, ref_ids: Sequence[str], reason: str = "not in the bank") -> None:
        self.bank = bank
        self.ref_ids = list(ref_ids)
        super().__init__(f"bank {bank!r}: reference(s) {_ids(self.ref_ids)} {reason}")


class BankExistsError(BankError):
    """A bank of that name exists already (409)."""

    def __init__(self, bank: str) -> None:
        self.bank = bank
        super().__init__(f"a bank named {bank!r} exists already")


class InvalidBankValueError(BankError, ValueError):
    """A value the bank cannot take: unknown kind, rollout outside [0, 1], a malformed name or reference."""

    def __init__(self, bank: str, reason: str) -> None:
        self.bank = bank
        super().__init__(f"bank {bank!r}: {reason}")


class BankDatabaseError(BankError):
    """The bank database cannot be reached or set up (503 in the service)."""


class MissingEmbeddingError(BankError, LookupError):
    """Enabled references whose clips have no embedding: the bank's index cannot hold them."""

    def __init__(self, bank: str, ref_ids: Sequence[str], clip_ids: Sequence[str]) -> None:
        self.bank = bank
        self.ref_ids = list(ref_ids)
        self.clip_ids = list(clip_ids)
        super().__init__(
            f"bank {bank!r}: reference(s) {_ids(self.ref_ids)} have no embedding for clip(s) {_ids(self.clip_ids)}: "
            "extract their features, or disable / remove the references"
        )
