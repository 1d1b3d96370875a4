"""Bank management on the bank database: one :class:`BankStore` method per operation.

Like Meta's Hasher-Matcher-Actioner, a bank is a named, curated set of references that
queries are matched against; here a reference is a clip of the feature store (its embedding
is what a :class:`~clipguard.banks.search.BankSearcher` searches). The tables are in
:mod:`clipguard.banks.tables`.

**Transactions.** Every mutating method takes an ``actor`` (who asked: ``cli:<user>``,
``api:<name>``) and runs in one transaction with the audit rows it writes: a refused call
(:class:`~clipguard.banks.errors.BankError`) changes nothing. A write first locks its bank's
row (a no-op ``UPDATE``: PostgreSQL locks the row, SQLite takes its database write lock before
the transaction reads anything), so concurrent writers to one bank are serialised and every
change to the references bumps ``content_version`` by exactly one, in the same transaction.
Only real changes are written: re-adding a reference with the same clip and label, disabling
a disabled one or removing a removed one changes nothing, bumps nothing and audits nothing.

**Content vs settings.** Adding, updating, removing, enabling and disabling references
change the searchable content (``content_version`` + 1); enabling / disabling the bank and
its rollout are settings, audited but not content (a searcher reads them on every check).

The database is ``banks.url`` (:func:`bank_url`: ``sqlite:///<work_dir>/banks.db`` by default,
PostgreSQL on the cluster); the tables are created on first use.
"""

from __future__ import annotations

import csv
import logging
import math
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, and_, bindparam, case, create_engine, event, func, insert, select, update
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from clipguard.banks.errors import (
    BankDatabaseError,
    BankExistsError,
    InvalidBankValueError,
    UnknownBankError,
    UnknownReferenceError,
)
from clipguard.banks.tables import (
    BANK_KINDS,
    ID_LENGTH,
    LABEL_LENGTH,
    NAME_LENGTH,
    AuditAction,
    AuditEntry,
    Bank,
    Base,
    Reference,
    utcnow,
)
from clipguard.config import Config

__all__ = [
    "AuditRecord",
    "BankInfo",
    "BankState",
    "BankStore",
    "ChangeReport",
    "NewReference",
    "ReferenceInfo",
    "ReferenceRow",
    "bank_url",
    "read_references_csv",
]

log = logging.getLogger(__name__)

BANK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
"""a bank name: letters, digits, ``.``, ``_``, ``-`` (it appears in URLs, file names and logs)"""
LOOKUP_CHUNK = 2_000
"""reference ids per ``IN (...)`` lookup"""
WRITE_CHUNK = 20_000
"""rows per bulk ``INSERT`` / ``UPDATE`` (executemany)"""
SQLITE_BUSY_S = 30.0
"""how long a SQLite writer waits for another one's lock before the call fails (503 in the service)"""


def bank_url(cfg: Config) -> str:
    """The bank database's SQLAlchemy URL: ``banks.url``, else ``sqlite:///<work_dir>/banks.db``."""
    return cfg.banks.url or f"sqlite:///{Path(cfg.work_dir) / 'banks.db'}"


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class NewReference:
    """A reference to add: its id in the bank, the clip whose embedding is searched, its label."""

    ref_id: str
    clip_id: str
    label: str | None = None


@dataclass(frozen=True)
class BankState:
    """What a searcher checks on every refresh (one indexed row)."""

    name: str
    kind: str
    enabled: bool
    rollout: float
    content_version: int


@dataclass(frozen=True)
class BankInfo(BankState):
    """A bank with its reference counts: ``references`` enabled and not removed (what searches
    see), ``disabled`` (not removed), ``removed``."""

    created_at: datetime
    references: int
    disabled: int
    removed: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ReferenceInfo:
    """A reference as stored (``version``: the bank's content_version of its last change)."""

    ref_id: str
    clip_id: str
    label: str | None
    enabled: bool
    removed: bool
    version: int
    added_at: datetime
    updated_at: datetime
    removed_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ReferenceRow(NamedTuple):
    """A reference as a searcher reads it: ``id`` is the row's primary key; ``active`` =
    enabled and not removed (what the bank's index holds)."""

    id: int
    ref_id: str
    clip_id: str
    label: str | None
    active: bool
    version: int


@dataclass(frozen=True)
class AuditRecord:
    """One audit row: who changed what in which bank, and the content_version after it."""

    id: int
    at: datetime
    actor: str
    action: str
    bank: str
    ref_id: str | None
    content_version: int
    details: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ChangeReport:
    """What a reference operation did: ``counts`` by outcome (e.g. ``added``, ``updated``,
    ``unchanged``) and the bank's content_version after it."""

    bank: str
    action: str
    content_version: int
    counts: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- validation


def _check_text(bank: str, what: str, value: object, max_length: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        raise InvalidBankValueError(bank, f"{what} must be a non-empty string of at most {max_length} characters, got {value!r}")
    return value


def _check_name(name: object) -> str:
    if not isinstance(name, str) or len(name) > NAME_LENGTH or not BANK_NAME.fullmatch(name):
        raise InvalidBankValueError(
            str(name), f"a bank name is 1-{NAME_LENGTH} letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


def _check_rollout(bank: str, fraction: object) -> float:
    if (
        isinstance(fraction, bool)
        or not isinstance(fraction, (int, float))
        or not math.isfinite(fraction)
        or not 0 <= fraction <= 1
    ):
        raise InvalidBankValueError(bank, f"rollout must be a fraction in [0, 1], got {fraction!r}")
    return float(fraction)


def _unique_references(bank: str, references: Iterable[NewReference]) -> dict[str, NewReference]:
    """``ref_id -> reference``, validated; the same id twice must carry the same clip and label."""
    out: dict[str, NewReference] = {}
    for ref in references:
        _check_text(bank, "ref_id", ref.ref_id, ID_LENGTH)
        _check_text(bank, f"clip_id of {ref.ref_id!r}", ref.clip_id, ID_LENGTH)
        label = ref.label or None
        if label is not None:
            _check_text(bank, f"label of {ref.ref_id!r}", label, LABEL_LENGTH)
        ref = NewReference(ref.ref_id, ref.clip_id, label)
        seen = out.setdefault(ref.ref_id, ref)
        if seen != ref:
            raise InvalidBankValueError(bank, f"reference {ref.ref_id!r} is given twice with different values: {seen} and {ref}")
    if not out:
        raise InvalidBankValueError(bank, "no references given")
    return out


def _unique_ids(bank: str, ref_ids: Iterable[str]) -> list[str]:
    ids = list(dict.fromkeys(_check_text(bank, "ref_id", r, ID_LENGTH) for r in ref_ids))
    if not ids:
        raise InvalidBankValueError(bank, "no reference ids given")
    return ids


def read_references_csv(path: str | Path) -> list[NewReference]:
    """The references of a CSV file ``ref_id,clip_id[,label]`` (a first row ``ref_id,clip_id,...``
    is a header). Raises ValueError naming the line of a malformed row."""
    out = []
    with open(path, newline="") as f:
        for line, row in enumerate(csv.reader(f), start=1):
            if not row or (line == 1 and row[0].strip() == "ref_id"):
                continue
            if len(row) not in (2, 3) or not row[0].strip() or not row[1].strip():
                raise ValueError(f"{path}:{line}: expected ref_id,clip_id[,label], got {row!r}")
            label = row[2].strip() if len(row) == 3 else ""
            out.append(NewReference(row[0].strip(), row[1].strip(), label or None))
    return out


# --------------------------------------------------------------------------- the store


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL (readers do not wait for a writer) and foreign keys, on every SQLite connection."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_S})
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


_ACTIVE = and_(Reference.enabled, Reference.removed.is_(False))
_REFERENCES = cast(Table, Reference.__table__)
_AUDIT = cast(Table, AuditEntry.__table__)
"""the tables, for bulk (Core executemany) inserts and updates"""


class BankStore:
    """The banks of one database (``url``: a SQLAlchemy URL). Thread-safe; the tables are
    created on first use. Every method raises :class:`~clipguard.banks.errors.BankDatabaseError`
    when the database cannot be reached (or is locked past ``SQLITE_BUSY_S``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _engine(url)
        self._schema_ready = False
        self._schema_lock = threading.Lock()

    @classmethod
    def from_config(cls, cfg: Config) -> BankStore:
        """The store of ``banks.url`` (:func:`bank_url`)."""
        return cls(bank_url(cfg))

    @property
    def shown_url(self) -> str:
        """The URL with any password masked (for messages and logs)."""
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        """Close the pooled connections."""
        self.engine.dispose()

    # ----------------------------------------------------------------------- sessions

    def _ensure_schema(self) -> None:
        with self._schema_lock:
            if self._schema_ready:
                return
            try:
                try:
                    Base.metadata.create_all(self.engine)
                except (IntegrityError, ProgrammingError):  # another process created the tables at the same moment
                    Base.metadata.create_all(self.engine)
            except OperationalError as e:
                raise BankDatabaseError(f"bank database {self.shown_url} cannot be reached: {e.orig}") from e
            self._schema_ready = True

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        """A session in one transaction: committed at the end of the block, rolled back on error."""
        self._ensure_schema()
        try:
            with Session(self.engine, expire_on_commit=False) as session, session.begin():
                yield session
        except OperationalError as e:
            raise BankDatabaseError(f"bank database {self.shown_url}: {e.orig}") from e

    @staticmethod
    def _lock_bank(session: Session, name: str) -> Bank:
        """The bank's row, locked until the transaction ends (see the module docstring)."""
        session.execute(
            update(Bank).where(Bank.name == name).values(content_version=Bank.content_version),
            execution_options={"synchronize_session": False},
        )
        bank = session.execute(select(Bank).where(Bank.name == name)).scalar_one_or_none()
        if bank is None:
            raise UnknownBankError(name)
        return bank

    @staticmethod
    def _bump(session: Session, bank: Bank) -> int:
        bank.content_version += 1
        session.flush()
        return bank.content_version

    @staticmethod
    def _audit(session: Session, rows: list[dict[str, Any]]) -> None:
        for start in range(0, len(rows), WRITE_CHUNK):
            session.execute(insert(_AUDIT), rows[start : start + WRITE_CHUNK])

    @staticmethod
    def _existing(session: Session, bank: Bank, ref_ids: Sequence[str]) -> dict[str, Reference]:
        """The stored references of ``ref_ids`` (removed ones included), by ref_id."""
        if session.execute(select(Reference.id).where(Reference.bank_id == bank.id).limit(1)).first() is None:
            return {}  # a new bank: nothing to look up
        found: dict[str, Reference] = {}
        for start in range(0, len(ref_ids), LOOKUP_CHUNK):
            chunk = ref_ids[start : start + LOOKUP_CHUNK]
            rows = session.execute(select(Reference).where(Reference.bank_id == bank.id, Reference.ref_id.in_(chunk)))
            found.update((r.ref_id, r) for r in rows.scalars())
        return found

    @staticmethod
    def _update_rows(session: Session, rows: list[dict[str, Any]], **values: Any) -> None:
        """Set ``values`` (constants or ``bindparam``s named in ``rows``) on the references ``rows[i]["pk"]``."""
        stmt = update(_REFERENCES).where(_REFERENCES.c.id == bindparam("pk")).values(**values)
        for start in range(0, len(rows), WRITE_CHUNK):
            session.execute(stmt, rows[start : start + WRITE_CHUNK])

    # ----------------------------------------------------------------------- banks

    def create_bank(self, name: str, kind: str, actor: str, rollout: float = 1.0, enabled: bool = True) -> BankInfo:
        """A new, empty bank (content_version 0).

        Raises:
            InvalidBankValueError: a malformed name, a kind not in ``BANK_KINDS``, a rollout outside [0, 1].
            BankExistsError: the name is taken.
        """
        name = _check_name(name)
        actor = _check_text(name, "actor", actor, NAME_LENGTH)
        if kind not in BANK_KINDS:
            raise InvalidBankValueError(name, f"unknown kind {kind!r}: choose from {', '.join(BANK_KINDS)}")
        fraction = _check_rollout(name, rollout)
        try:
            with self._transaction() as s:
                if s.execute(select(Bank.id).where(Bank.name == name)).first() is not None:
                    raise BankExistsError(name)
                bank = Bank(name=name, kind=kind, enabled=bool(enabled), rollout=fraction, content_version=0, created_at=utcnow())
                s.add(bank)
                s.flush()
                details = {"kind": kind, "rollout": fraction, "enabled": bool(enabled)}
                self._audit(s, [_audit_row(actor, "create_bank", name, None, 0, details)])
        except IntegrityError as e:  # created by a concurrent call between the check and the insert
            raise BankExistsError(name) from e
        return self.get_bank(name)

    def enable_bank(self, name: str, actor: str) -> BankInfo:
        """Let the bank apply to queries again (a setting: content_version unchanged)."""
        return self._set_bank(name, actor, "enable_bank", enabled=True)

    def disable_bank(self, name: str, actor: str) -> BankInfo:
        """Stop the bank from applying to any query; its references stay as they are."""
        return self._set_bank(name, actor, "disable_bank", enabled=False)

    def set_rollout(self, name: str, fraction: float, actor: str) -> BankInfo:
        """Apply the bank to the share ``fraction`` of queries (:mod:`clipguard.banks.rollout`).

        Raises:
            InvalidBankValueError: ``fraction`` is not a number in [0, 1].
        """
        return self._set_bank(name, actor, "set_rollout", rollout=_check_rollout(name, fraction))

    def _set_bank(self, name: str, actor: str, action: AuditAction, **values: Any) -> BankInfo:
        actor = _check_text(name, "actor", actor, NAME_LENGTH)
        with self._transaction() as s:
            bank = self._lock_bank(s, name)
            before = {k: getattr(bank, k) for k in values}
            if before != values:
                for k, v in values.items():
                    setattr(bank, k, v)
                details = {k: {"before": before[k], "after": v} for k, v in values.items()}
                self._audit(s, [_audit_row(actor, action, name, None, bank.content_version, details)])
        return self.get_bank(name)

    def list_banks(self) -> list[BankInfo]:
        """Every bank with its reference counts, by name."""
        with self._transaction() as s:
            return self._infos(s, None)

    def get_bank(self, name: str) -> BankInfo:
        """One bank with its reference counts.

        Raises:
            UnknownBankError: no bank of that name.
        """
        with self._transaction() as s:
            found = self._infos(s, name)
        if not found:
            raise UnknownBankError(name)
        return found[0]

    @staticmethod
    def _infos(session: Session, name: str | None) -> list[BankInfo]:
        counts = (
            select(
                Reference.bank_id,
                func.sum(case((_ACTIVE, 1), else_=0)).label("active"),
                func.sum(case((and_(Reference.enabled.is_(False), Reference.removed.is_(False)), 1), else_=0)).label("disabled"),
                func.sum(case((Reference.removed, 1), else_=0)).label("removed"),
            )
            .group_by(Reference.bank_id)
            .subquery()
        )
        query = select(Bank, counts.c.active, counts.c.disabled, counts.c.removed).outerjoin(counts, counts.c.bank_id == Bank.id)
        if name is not None:
            query = query.where(Bank.name == name)
        return [
            BankInfo(b.name, b.kind, b.enabled, b.rollout, b.content_version, b.created_at, int(a or 0), int(d or 0), int(r or 0))
            for b, a, d, r in session.execute(query.order_by(Bank.name))
        ]

    def bank_state(self, name: str) -> BankState:
        """The bank's settings and content_version (cheap: one row by its unique name).

        Raises:
            UnknownBankError: no bank of that name.
        """
        with self._transaction() as s:
            row = s.execute(
                select(Bank.name, Bank.kind, Bank.enabled, Bank.rollout, Bank.content_version).where(Bank.name == name)
            ).first()
        if row is None:
            raise UnknownBankError(name)
        return BankState(*row)

    # ----------------------------------------------------------------------- references

    def add_references(self, bank: str, references: Iterable[NewReference], actor: str) -> ChangeReport:
        """Add references in bulk, idempotently on (bank, ref_id).

        A new ref_id is inserted (enabled); an existing one with the same clip and label is
        left as it is (``unchanged``, even if disabled); one with another clip or label is
        updated, and a removed one is restored (enabled again) — both ``updated``. One audit
        row per added / updated reference; content_version + 1 if anything changed.

        Raises:
            UnknownBankError; InvalidBankValueError: a malformed reference, or one ref_id given
            twice with different values.
        """
        refs = _unique_references(bank, references)
        actor = _check_text(bank, "actor", actor, NAME_LENGTH)
        with self._transaction() as s:
            b = self._lock_bank(s, bank)
            existing = self._existing(s, b, list(refs))
            new = [r for r in refs.values() if r.ref_id not in existing]
            changed = [
                (existing[r.ref_id], r)
                for r in refs.values()
                if r.ref_id in existing
                and (existing[r.ref_id].removed or (existing[r.ref_id].clip_id, existing[r.ref_id].label) != (r.clip_id, r.label))
            ]
            counts = {"added": len(new), "updated": len(changed), "unchanged": len(refs) - len(new) - len(changed)}
            if not new and not changed:
                return ChangeReport(bank, "add", b.content_version, counts)
            version = self._bump(s, b)
            now = utcnow()
            for start in range(0, len(new), WRITE_CHUNK):  # built chunk by chunk: a million rows stay small in memory
                chunk = new[start : start + WRITE_CHUNK]
                rows = [
                    {"bank_id": b.id, "ref_id": r.ref_id, "clip_id": r.clip_id, "label": r.label, "enabled": True,
                     "removed": False, "version": version, "added_at": now, "updated_at": now, "removed_at": None}
                    for r in chunk
                ]  # fmt: skip
                s.execute(insert(_REFERENCES), rows)
                details = [{"clip_id": r.clip_id, "label": r.label} for r in chunk]
                self._audit(s, [_audit_row(actor, "add", bank, r.ref_id, version, d, now) for r, d in zip(chunk, details)])
            self._update_rows(
                s,
                [
                    {"pk": old.id, "new_clip": r.clip_id, "new_label": r.label, "restore": old.removed or old.enabled}
                    for old, r in changed
                ],
                clip_id=bindparam("new_clip"),
                label=bindparam("new_label"),
                enabled=bindparam("restore"),
                removed=False,
                removed_at=None,
                version=version,
                updated_at=now,
            )
            updates = [
                _audit_row(
                    actor,
                    "update",
                    bank,
                    r.ref_id,
                    version,
                    {
                        "before": {"clip_id": old.clip_id, "label": old.label, "removed": old.removed},
                        "after": {"clip_id": r.clip_id, "label": r.label, "removed": False},
                    },
                    now,
                )
                for old, r in changed
            ]
            self._audit(s, updates)
        return ChangeReport(bank, "add", version, counts)

    def remove_references(self, bank: str, ref_ids: Iterable[str], actor: str) -> ChangeReport:
        """Remove references: they leave the searchable set; their rows stay (``removed``), so the
        removal is auditable and re-adding the id restores it. Removing a removed one is ``unchanged``.

        Raises:
            UnknownBankError; UnknownReferenceError: ids that were never in the bank (nothing is removed).
        """
        ids = _unique_ids(bank, ref_ids)
        actor = _check_text(bank, "actor", actor, NAME_LENGTH)
        with self._transaction() as s:
            b = self._lock_bank(s, bank)
            existing = self._existing(s, b, ids)
            unknown = [r for r in ids if r not in existing]
            if unknown:
                raise UnknownReferenceError(bank, unknown)
            todo = [existing[r] for r in ids if not existing[r].removed]
            counts = {"removed": len(todo), "unchanged": len(ids) - len(todo)}
            if not todo:
                return ChangeReport(bank, "remove", b.content_version, counts)
            version = self._bump(s, b)
            now = utcnow()
            self._update_rows(s, [{"pk": r.id} for r in todo], removed=True, removed_at=now, version=version, updated_at=now)
            self._audit(
                s,
                [
                    _audit_row(
                        actor,
                        "remove",
                        bank,
                        r.ref_id,
                        version,
                        {"clip_id": r.clip_id, "label": r.label, "enabled": r.enabled},
                        now,
                    )
                    for r in todo
                ],
            )
        return ChangeReport(bank, "remove", version, counts)

    def disable_references(self, bank: str, ref_ids: Iterable[str], actor: str) -> ChangeReport:
        """Take references out of the searchable set without removing them (``enable_references`` undoes it).

        Raises:
            UnknownBankError; UnknownReferenceError: ids not in the bank, or removed.
        """
        return self._set_enabled(bank, ref_ids, False, actor)

    def enable_references(self, bank: str, ref_ids: Iterable[str], actor: str) -> ChangeReport:
        """Put disabled references back into the searchable set.

        Raises:
            UnknownBankError; UnknownReferenceError: ids not in the bank, or removed (re-add those).
        """
        return self._set_enabled(bank, ref_ids, True, actor)

    def _set_enabled(self, bank: str, ref_ids: Iterable[str], enabled: bool, actor: str) -> ChangeReport:
        ids = _unique_ids(bank, ref_ids)
        actor = _check_text(bank, "actor", actor, NAME_LENGTH)
        action: AuditAction = "enable" if enabled else "disable"
        with self._transaction() as s:
            b = self._lock_bank(s, bank)
            existing = self._existing(s, b, ids)
            unknown = [r for r in ids if r not in existing or existing[r].removed]
            if unknown:
                raise UnknownReferenceError(bank, unknown, "not in the bank or removed")
            todo = [existing[r] for r in ids if existing[r].enabled != enabled]
            counts = {f"{action}d": len(todo), "unchanged": len(ids) - len(todo)}
            if not todo:
                return ChangeReport(bank, action, b.content_version, counts)
            version = self._bump(s, b)
            now = utcnow()
            self._update_rows(s, [{"pk": r.id} for r in todo], enabled=enabled, version=version, updated_at=now)
            self._audit(s, [_audit_row(actor, action, bank, r.ref_id, version, {"clip_id": r.clip_id}, now) for r in todo])
        return ChangeReport(bank, action, version, counts)

    def list_references(
        self, bank: str, include_removed: bool = False, offset: int = 0, limit: int | None = None
    ) -> list[ReferenceInfo]:
        """The bank's references in the order they were added (removed ones on request).

        Raises:
            UnknownBankError.
        """
        with self._transaction() as s:
            b = self._bank(s, bank)
            query = select(Reference).where(Reference.bank_id == b.id)
            if not include_removed:
                query = query.where(Reference.removed.is_(False))
            query = query.order_by(Reference.id).offset(offset).limit(limit)
            return [
                ReferenceInfo(
                    r.ref_id, r.clip_id, r.label, r.enabled, r.removed, r.version, r.added_at, r.updated_at, r.removed_at
                )
                for r in s.execute(query).scalars()
            ]

    def reference_rows(self, bank: str, since_version: int = 0) -> list[ReferenceRow]:
        """The references (removed ones included) whose last change came after ``since_version``,
        read in one statement (a consistent snapshot): what a searcher applies to catch up.

        Raises:
            UnknownBankError.
        """
        with self._transaction() as s:
            b = self._bank(s, bank)
            query = select(Reference.id, Reference.ref_id, Reference.clip_id, Reference.label, _ACTIVE, Reference.version).where(
                Reference.bank_id == b.id, Reference.version > since_version
            )
            return [ReferenceRow(i, r, c, label, bool(a), v) for i, r, c, label, a, v in s.execute(query.order_by(Reference.id))]

    @staticmethod
    def _bank(session: Session, name: str) -> Bank:
        bank = session.execute(select(Bank).where(Bank.name == name)).scalar_one_or_none()
        if bank is None:
            raise UnknownBankError(name)
        return bank

    # ----------------------------------------------------------------------- audit

    def audit_log(
        self,
        bank: str | None = None,
        ref_id: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        limit: int = 100,
    ) -> list[AuditRecord]:
        """Audit rows, newest first, filtered by bank, reference, actor and action (None: any)."""
        query = select(AuditEntry)
        for column, value in (
            (AuditEntry.bank, bank),
            (AuditEntry.ref_id, ref_id),
            (AuditEntry.actor, actor),
            (AuditEntry.action, action),
        ):
            if value is not None:
                query = query.where(column == value)
        with self._transaction() as s:
            return [
                AuditRecord(a.id, a.at, a.actor, a.action, a.bank, a.ref_id, a.content_version, a.details)
                for a in s.execute(query.order_by(AuditEntry.id.desc()).limit(limit)).scalars()
            ]


def _audit_row(
    actor: str,
    action: AuditAction,
    bank: str,
    ref_id: str | None,
    version: int,
    details: dict[str, Any],
    at: datetime | None = None,
) -> dict[str, Any]:
    return {
        "at": at or utcnow(),
        "actor": actor,
        "action": action,
        "bank": bank,
        "ref_id": ref_id,
        "content_version": version,
        "details": details,
    }
