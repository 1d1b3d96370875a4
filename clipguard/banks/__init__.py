"""Reference banks, like Meta's Hasher-Matcher-Actioner: curated sets of clips that queries are
matched against, stored in SQL with an audit log, searched through a FAISS index that follows
every change (:mod:`clipguard.banks.store`, :mod:`clipguard.banks.search`,
:mod:`clipguard.banks.rollout`)."""

from clipguard.banks.errors import (
    BankDatabaseError,
    BankError,
    BankExistsError,
    InvalidBankValueError,
    MissingEmbeddingError,
    UnknownBankError,
    UnknownReferenceError,
)
from clipguard.banks.rollout import in_rollout, rollout_position
from clipguard.banks.search import (
    BankIndex,
    BankMatch,
    BankSearcher,
    BankSearchResult,
    ClipEmbeddings,
    ConsistencyReport,
    RefreshReport,
    supports_removal,
)
from clipguard.banks.store import (
    AuditRecord,
    BankInfo,
    BankState,
    BankStore,
    ChangeReport,
    NewReference,
    ReferenceInfo,
    ReferenceRow,
    bank_url,
    read_references_csv,
)
from clipguard.banks.tables import AUDIT_ACTIONS, BANK_KINDS, AuditAction, BankKind

__all__ = [
    "AUDIT_ACTIONS",
    "AuditAction",
    "AuditRecord",
    "BANK_KINDS",
    "BankDatabaseError",
    "BankError",
    "BankExistsError",
    "BankIndex",
    "BankInfo",
    "BankKind",
    "BankMatch",
    "BankSearchResult",
    "BankSearcher",
    "BankState",
    "BankStore",
    "ChangeReport",
    "ClipEmbeddings",
    "ConsistencyReport",
    "InvalidBankValueError",
    "MissingEmbeddingError",
    "NewReference",
    "ReferenceInfo",
    "ReferenceRow",
    "RefreshReport",
    "UnknownBankError",
    "UnknownReferenceError",
    "bank_url",
    "in_rollout",
    "read_references_csv",
    "rollout_position",
    "supports_removal",
]
