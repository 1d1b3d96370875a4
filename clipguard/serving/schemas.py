"""Request and response bodies of the RCI service (pydantic; BentoML builds its OpenAPI from them).

Every scoring or search response names the versions that made the decision (DESIGN §4):
``data_version`` (the validated data the student was trained on), ``model_version`` (the student: ``<registered name>/<version>`` for a registry model, the
training version for a model directory), ``encoder_version`` (the frozen encoders whose
cached features were scored) and ``index_version`` (the FAISS index a search used, or the
one loaded beside the model; ``None`` when the service runs without an index).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from clipguard.banks import BankKind, ReferenceInfo

ClipId = Annotated[str, StringConstraints(min_length=1, max_length=256)]
"""A clip id as stored in the feature table (non-empty, at most 256 characters)."""


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class PairRequest(_Body):
    """A (query, candidate) pair of clips with cached features."""

    query_clip_id: ClipId
    candidate_clip_id: ClipId


class Versions(_Body):
    """The versions behind a decision."""

    model_version: str
    encoder_version: str = Field(description="the features' version: the frozen encoders that made them")
    index_version: str | None = None
    data_version: str | None = Field(None, description="the validated data the model was trained on (its lineage)")


class PairScore(Versions):
    """P(candidate reproduces query) and the label at the model's threshold."""

    query_clip_id: str | None = Field(None, description="None for an uploaded query video")
    candidate_clip_id: str | None = Field(None, description="None for an uploaded candidate video")
    score: float = Field(description="P(reproduced content), softmax of the rci logits")
    label: bool = Field(description="score >= threshold")
    threshold: float


class Candidate(_Body):
    """A retrieved clip, scored against the query by the student."""

    clip_id: str
    similarity: float = Field(description="cosine similarity of the clip embeddings (index)")
    score: float
    label: bool


class SearchResponse(Versions):
    """Top-k candidates of a query, best retrieval similarity first."""

    query_clip_id: str | None = Field(None, description="None for an uploaded video")
    k: int
    threshold: float
    candidates: list[Candidate]


class HealthResponse(_Body):
    """Readiness and what is loaded."""

    status: Literal["loading", "ready", "failed"]
    detail: str | None = Field(None, description="why loading failed")
    model_uri: str
    model_version: str | None = None
    encoder_version: str | None = None
    index_version: str | None = None
    data_version: str | None = None
    threshold: float | None = None
    threshold_source: str | None = None
    features_dir: str | None = None
    feature_source: str
    clips: int | None = Field(None, description="clips with features (files source; None for Feast)")
    index_vectors: int | None = None
    media: bool = Field(False, description="whether uploaded media can be scored")
    batching: bool
    max_batch_size: int
    max_latency_ms: int
    reload: str = Field(description="how a new champion is picked up")
    loaded_at: float | None = Field(None, description="Unix time the current model was loaded")
    last_reload_check: float | None = None
    last_reload_error: str | None = Field(None, description="why the last champion check failed (the old model stays)")
    reloads: int = Field(0, description="models swapped in since start-up")
    score_calls: int = Field(0, description="rci/score batches run (one adaptive batch each)")
    scored_pairs: int = Field(0, description="pairs in those batches (scored_pairs / score_calls = mean batch size)")


# --------------------------------------------------------------------------- banks (clipguard.banks)

BankName = Annotated[str, StringConstraints(min_length=1, max_length=128)]
RefId = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class ReferenceRequest(_Body):
    """A reference to add to a bank: its id there, the clip whose embedding is searched, a label (policy)."""

    ref_id: RefId
    clip_id: ClipId
    label: Annotated[str, StringConstraints(max_length=128)] | None = None


class BankResponse(_Body):
    """A bank, its settings and reference counts."""

    model_config = ConfigDict(from_attributes=True)

    name: str
    kind: BankKind
    enabled: bool
    rollout: float = Field(description="share of queries the bank applies to (stable hash of the query id)")
    content_version: int = Field(description="+1 with every change of the searchable references")
    created_at: datetime
    references: int = Field(description="enabled, not removed: what searches see")
    disabled: int
    removed: int


class BankDetailResponse(BankResponse):
    """A bank with one page of its references (in the order they were added)."""

    page: list[ReferenceInfo] = Field(description="the references from offset to offset + limit (as stored)")


class AuditResponse(_Body):
    """One audit row: who changed what, and the bank's content_version after it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str = Field(description="api:<X-Clipguard-Actor> for the service's writes, cli:<user> for the CLI's")
    action: str
    bank: str
    ref_id: str | None
    content_version: int
    details: dict[str, Any]


class BankChangeResponse(_Body):
    """What a reference operation did: counts by outcome and the bank's content_version after it."""

    model_config = ConfigDict(from_attributes=True)

    bank: str
    action: str
    content_version: int
    counts: dict[str, int]


class BankMatchResponse(_Body):
    """A reference of a bank found for a query clip: cosine similarity of their clip embeddings."""

    ref_id: str
    clip_id: str
    label: str | None
    similarity: float


class BankSearchResponse(Versions):
    """The references of one bank nearest to a stored clip, at the bank's ``content_version``."""

    bank: str
    content_version: int = Field(description="the bank version the searched index holds")
    applied: bool = Field(description="False: the bank is disabled, or this query is outside its rollout")
    matches: list[BankMatchResponse] = Field(description="best first (empty when not applied)")
