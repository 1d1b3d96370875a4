"""The bank database (SQLAlchemy 2.x ORM): ``banks``, ``references``, ``audit``.

* ``banks``: one row per bank: unique ``name``, ``kind`` (:data:`BANK_KINDS`), ``enabled``,
  ``rollout`` (the share of queries the bank applies to, 0..1) and ``content_version``, which
  goes up by one in every transaction that changes the bank's searchable content.
* ``references``: the bank's entries: ``ref_id`` (unique within the bank), the ``clip_id``
  whose embedding is searched (a clip id of the feature store), an optional ``label``
  (the policy), ``enabled`` and ``removed``. A removed reference keeps its row (``removed``,
  ``removed_at``), so a removal stays auditable and re-adding the id restores it.
  ``version`` is the bank's ``content_version`` of the row's last change: a searcher asks
  for the rows with ``version`` above the one it holds and applies only those.
* ``audit``: one row per change: time, ``actor``, ``action`` (:data:`AUDIT_ACTIONS`), bank,
  ``ref_id`` (None for a bank-level change), the bank's ``content_version`` after the change
  and ``details`` (JSON: the values before and after). Written in the same transaction as
  the change it records.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal, get_args

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

BankKind = Literal["rci-reference", "violation", "trend"]
"""``rci-reference``: originals whose re-uploads RCI looks for; ``violation``: curated
violating clips (the livestream paper's bank); ``trend``: few-shot seed examples of a trend."""
BANK_KINDS: tuple[str, ...] = get_args(BankKind)

AuditAction = Literal["create_bank", "enable_bank", "disable_bank", "set_rollout", "add", "update", "remove", "disable", "enable"]
AUDIT_ACTIONS: tuple[str, ...] = get_args(AuditAction)

NAME_LENGTH = 128
ID_LENGTH = 256
LABEL_LENGTH = 128


def utcnow() -> datetime:
    """The current time, timezone-aware (UTC)."""
    return datetime.now(timezone.utc)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite keeps no offset: its values are
    stored as UTC and read back with ``tzinfo=UTC``)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive timestamp {value!r}: the bank database stores timezone-aware (UTC) times")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=timezone.utc)


class Base(DeclarativeBase):
    """The bank database's declarative base (its ``metadata`` creates the tables)."""


class Bank(Base):
    __tablename__ = "banks"
    __table_args__ = (
        CheckConstraint("rollout >= 0 AND rollout <= 1", name="rollout_fraction"),
        CheckConstraint("kind IN ({})".format(", ".join(f"'{k}'" for k in BANK_KINDS)), name="bank_kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    rollout: Mapped[float] = mapped_column(Float, default=1.0)
    content_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class Reference(Base):
    __tablename__ = "references"
    __table_args__ = (
        UniqueConstraint("bank_id", "ref_id", name="ref_id_unique_in_bank"),
        Index("references_by_version", "bank_id", "version"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id"))
    ref_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    clip_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    label: Mapped[str | None] = mapped_column(String(LABEL_LENGTH), nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    removed: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer)
    added_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    removed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class AuditEntry(Base):
    __tablename__ = "audit"
    __table_args__ = (Index("audit_by_bank_ref", "bank", "ref_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(NAME_LENGTH))
    action: Mapped[str] = mapped_column(String(32))
    bank: Mapped[str] = mapped_column(String(NAME_LENGTH))
    ref_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), nullable=True)
    content_version: Mapped[int] = mapped_column(Integer)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
