"""The RCI service (BentoML 1.4): score clip pairs with the student, search the violation index.

One service, ``ClipGuard``, in one worker process holding a
:class:`~clipguard.serving.runtime.ServingRuntime` (student, cached features, index).
Routes (POST, JSON; every scoring and search response carries ``model_version``,
``encoder_version`` and ``index_version``)::

    /rci/score          {"pairs": [{"query_clip_id", "candidate_clip_id"}, ...]} -> [PairScore, ...]
    /rci/score_media    multipart: query, candidate (video files)[, query_text, candidate_text] -> PairScore
    /rci/search         {"clip_id", "k"} -> SearchResponse (top-k of the index, each scored)
    /rci/search_media   multipart: video[, k, text] -> SearchResponse
    /rci/reload         {} -> HealthResponse (check the champion alias now; needs
                        Authorization: Bearer $CLIPGUARD_ADMIN_TOKEN, else 401 / 403)
    /health             {} -> HealthResponse (loading / ready / failed, versions, batch counters)

plus BentoML's ``GET /readyz`` (200 once the model is loaded) and ``GET /livez``, and the bank
routes (:mod:`clipguard.banks` on ``banks.url``)::

    /banks/list         {} -> [BankResponse, ...]
    /banks/get          {"bank"[, "offset", "limit", "include_removed"]} -> BankDetailResponse
    /banks/audit        {["bank", "ref_id", "actor", "action", "limit"]} -> [AuditResponse, ...] (newest first)
    /banks/search       {"bank", "clip_id"[, "k"]} -> BankSearchResponse (the bank's nearest references to a
                        stored clip, at the bank's current content_version: changes need no restart)
    /banks/create       {"bank", "kind"[, "rollout", "enabled"]} -> BankResponse
    /banks/add          {"bank", "references": [{"ref_id", "clip_id"[, "label"]}, ...]} -> BankChangeResponse
    /banks/remove       {"bank", "ref_ids"} -> BankChangeResponse
    /banks/disable      {"bank", "ref_ids"} -> BankChangeResponse
    /banks/enable       {"bank", "ref_ids"} -> BankChangeResponse
    /banks/disable_bank {"bank"} -> BankResponse (the whole bank off)
    /banks/enable_bank  {"bank"} -> BankResponse
    /banks/rollout      {"bank", "rollout"} -> BankResponse

**Writes** (``rci/reload`` and the bank routes that change a bank, :data:`WRITE_ROUTES`) need
``Authorization: Bearer $CLIPGUARD_ADMIN_TOKEN`` (401 without or with another token; 403 when
the service has no token). The bank audit names the writer ``api:<name>``, the name from the
``X-Clipguard-Actor`` header (default ``admin``): the token is what authenticates, the header
says which holder of it acted. Bank errors: unknown bank or reference 404, a taken name 409, a
bad kind / rollout / reference 400, the bank database unreachable 503.

**Adaptive batching.** ``rci/score`` is a batchable API: BentoML's dispatcher merges the
pairs of concurrent requests into one forward pass (at most ``serving.max_batch_size``
pairs; a queued request whose estimated completion exceeds ``serving.max_latency_ms`` is
answered 503, and at most ``serving.max_concurrency`` requests are in flight, which bounds
the queue).
A request may carry up to ``serving.max_pairs_per_request`` pairs. The batch must never
fail because of one request, so clip ids are checked while the request body is validated,
before it joins a batch: an unknown id is answered 404 (naming the ids) for its own
request only. ``serving.batching=false`` serves the same route without the dispatcher,
one request per forward pass (the benchmark's baseline).

**Uploads** are decoded and encoded with the frozen encoders of the served encoder version
(:func:`clipguard.rci.encode.encode_media`; its first ``media.clip_seconds``); a body larger
than the route allows is refused with 413 before it is read
(:class:`~clipguard.serving.middleware.UploadLimitMiddleware`), a file above
``serving.max_upload_bytes`` with 413 naming it, a file that does not decode with 422.

**Errors.** Malformed bodies are 400 (BentoML's validation), unknown clips 404, search
without an index or media without encoders 404, overload 429 (``traffic.max_concurrency``
requests in flight) or 503 (batch deadline; model still loading or failed to load), never a
time-out or a 500 for bad input.

Configuration (:func:`~clipguard.serving.runtime.config_from_arguments`): bento arguments,
then ``$CLIPGUARD_OVERRIDES`` (a JSON object of dotted keys; what a deployment of a built
bento sets, since BentoML serves a bento with its build-time arguments)::

    bentoml serve clipguard.serving.service:ClipGuard \\
        --arg rci.model_uri=models:/clipguard-student@champion --arg serving.features_dir=runs/features
    CLIPGUARD_OVERRIDES='{"serving.features_dir": "/data/features"}' bentoml serve clipguard:latest

Model reload: the champion alias is polled every ``serving.reload_interval_s`` and
``/rci/reload`` polls it at once (see :mod:`clipguard.serving.runtime`).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Annotated

import bentoml
from annotated_types import Ge, Le, Len
from bentoml.exceptions import BentoMLException
from pydantic import AfterValidator, StringConstraints

from clipguard.banks import BankDatabaseError, BankError, BankExistsError, BankKind, BankStore, NewReference
from clipguard.serving.errors import ClipNotFoundError, IncompatibleModelError, ServingError
from clipguard.serving.middleware import MULTIPART_OVERHEAD_BYTES, UploadLimitMiddleware, WriteAuthMiddleware
from clipguard.serving.runtime import ServingRuntime, config_from_arguments
from clipguard.serving.schemas import (
    AuditResponse,
    BankChangeResponse,
    BankDetailResponse,
    BankName,
    BankResponse,
    BankSearchResponse,
    ClipId,
    HealthResponse,
    PairRequest,
    PairScore,
    ReferenceRequest,
    RefId,
    SearchResponse,
)

CONFIG = config_from_arguments(vars(bentoml.use_arguments()))
SERVING = CONFIG.serving
RUNTIME = ServingRuntime(CONFIG)
"""This process's runtime; the service starts it. Module-level so that request validation
(which runs before a request joins a batch) can check clip ids against the loaded features."""
BANKS = BankStore.from_config(CONFIG)
"""The bank database (connected, and its tables created, on the first bank request)."""

IMAGE = (
    bentoml.images.Image(python_version="3.11", lock_python_packages=False)
    .system_packages("ffmpeg")
    # the CPU torch wheel first, so that the requirements never resolve a CUDA build
    .run("pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu")
)
"""The bento's image; the Python requirements come from requirements.txt (bentofile.yaml)."""

ENVS = [
    {"name": "HF_HUB_OFFLINE", "value": "1"},
    {"name": "TRANSFORMERS_OFFLINE", "value": "1"},
    {"name": "MLFLOW_DISABLE_TELEMETRY", "value": "true"},
]


def http_error(err: ServingError) -> BentoMLException:
    """The BentoML exception (status + message) of a runtime error."""
    return BentoMLException(str(err), error_code=HTTPStatus(err.status))


def bank_http_error(err: BankError) -> BentoMLException:
    """The BentoML exception of a refused bank operation: 404 unknown, 409 taken, 503 database, else 400."""
    if isinstance(err, LookupError):
        status = HTTPStatus.NOT_FOUND
    elif isinstance(err, BankExistsError):
        status = HTTPStatus.CONFLICT
    elif isinstance(err, BankDatabaseError):
        status = HTTPStatus.SERVICE_UNAVAILABLE
    else:
        status = HTTPStatus.BAD_REQUEST
    return BentoMLException(str(err), error_code=status)


@contextlib.contextmanager
def bank_errors() -> Iterator[None]:
    """Every bank route's error mapping: a :class:`BankError` raised inside becomes :func:`bank_http_error`."""
    try:
        yield
    except BankError as e:
        raise bank_http_error(e) from e


ACTOR_HEADER = "x-clipguard-actor"
ACTOR_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


def request_actor(ctx: bentoml.Context) -> str:
    """``api:<name>`` of a bank write: the ``X-Clipguard-Actor`` header, default ``admin`` (400 if malformed)."""
    name = ctx.request.headers.get(ACTOR_HEADER, "admin")
    if not ACTOR_NAME.fullmatch(name):
        raise BentoMLException(
            f"{ACTOR_HEADER}: 1-64 letters, digits, '.', '_', '@' or '-', got {name!r}", error_code=HTTPStatus.BAD_REQUEST
        )
    return f"api:{name}"


def _known_pairs(pairs: list[PairRequest]) -> list[PairRequest]:
    """Request validation: every clip must have cached features (404 naming the unknown ids)."""
    try:
        RUNTIME.require_pairs([(p.query_clip_id, p.candidate_clip_id) for p in pairs])
    except ServingError as e:
        raise http_error(e) from e
    return pairs


KnownPairs = Annotated[list[PairRequest], Len(1, SERVING.max_pairs_per_request), AfterValidator(_known_pairs)]
TopK = Annotated[int, Ge(1), Le(SERVING.max_top_k)]
DEFAULT_K = min(CONFIG.rci.top_k, SERVING.max_top_k)
VideoText = Annotated[str, StringConstraints(max_length=CONFIG.validation.max_asr_chars)]
"""Title / OCR / ASR text of an uploaded video, encoded like a stored clip's text."""
BankRefs = Annotated[list[ReferenceRequest], Len(1, CONFIG.banks.max_refs_per_request)]
BankRefIds = Annotated[list[RefId], Len(1, CONFIG.banks.max_refs_per_request)]
PageLimit = Annotated[int, Ge(1), Le(1000)]


@bentoml.service(
    name="clipguard",
    workers=SERVING.workers,
    # BentoML splits the service's max_concurrency evenly over its workers; ours is per worker,
    # since the kernel does not spread connections evenly (a worker holding more than its share
    # would answer 429 while the other idles)
    traffic={"timeout": SERVING.timeout_s, "max_concurrency": SERVING.max_concurrency * SERVING.workers},
    envs=ENVS,
    image=IMAGE,
)
class ClipGuard:
    """Reproduced-content identification: pair scoring and index search (see the module docstring)."""

    def __init__(self) -> None:
        self.runtime = RUNTIME
        self.runtime.start()

    def __is_ready__(self) -> bool:
        return self.runtime.ready

    @bentoml.on_shutdown
    def close(self) -> None:
        self.runtime.close()
        BANKS.close()

    @bentoml.api(
        route="/rci/score",
        batchable=SERVING.batching,
        max_batch_size=SERVING.max_batch_size,
        max_latency_ms=SERVING.max_latency_ms,
    )
    def score(self, pairs: KnownPairs) -> list[PairScore]:
        """Score pairs of clips with cached features: P(candidate reproduces query), label, versions."""
        try:
            return self.runtime.score_pairs([(p.query_clip_id, p.candidate_clip_id) for p in pairs])
        except ClipNotFoundError as e:
            # validated before batching: the features changed (reload) while the pairs were queued
            raise BentoMLException(f"features changed while queued, retry: {e}", error_code=HTTPStatus.SERVICE_UNAVAILABLE) from e
        except ServingError as e:
            raise http_error(e) from e

    @bentoml.api(route="/rci/search")
    def search(self, clip_id: ClipId, k: TopK = DEFAULT_K) -> SearchResponse:
        """The ``k`` clips of the index most similar to ``clip_id``, each scored by the student."""
        try:
            return self.runtime.search(clip_id, k)
        except ServingError as e:
            raise http_error(e) from e

    @bentoml.api(route="/rci/score_media")
    def score_media(self, query: Path, candidate: Path, query_text: VideoText = "", candidate_text: VideoText = "") -> PairScore:
        """Score two uploaded videos as (query, candidate): decoded, encoded, then scored by the student."""
        try:
            self.runtime.check_upload("query", query)
            self.runtime.check_upload("candidate", candidate)
            return self.runtime.score_media(query, candidate, query_text, candidate_text)
        except ServingError as e:
            raise http_error(e) from e

    @bentoml.api(route="/rci/search_media")
    def search_media(self, video: Path, k: TopK = DEFAULT_K, text: VideoText = "") -> SearchResponse:
        """The ``k`` clips of the index most similar to an uploaded video, each scored by the student."""
        try:
            self.runtime.check_upload("video", video)
            return self.runtime.search_media(video, k, text)
        except ServingError as e:
            raise http_error(e) from e

    @bentoml.api(route="/rci/reload")
    def reload(self) -> HealthResponse:
        """Check the champion alias now; a new champion is loaded and swapped in before this returns.

        A champion that cannot be served (gone, or not fitting the features) is 409 with the
        reason, a registry that cannot be reached 503; the serving model stays either way.
        """
        from clipguard.rci.student import ModelNotFoundError

        try:
            self.runtime.refresh()
        except (ModelNotFoundError, IncompatibleModelError, TypeError) as e:
            raise BentoMLException(f"the champion cannot be served: {e}", error_code=HTTPStatus.CONFLICT) from e
        except Exception as e:
            raise BentoMLException(f"champion check failed: {e}", error_code=HTTPStatus.SERVICE_UNAVAILABLE) from e
        return self.runtime.health()

    @bentoml.api(route="/health")
    async def health(self) -> HealthResponse:
        """``loading`` / ``ready`` / ``failed``, the versions served, and batch counters."""
        return self.runtime.health()

    @bentoml.api(route="/banks/list")
    def banks_list(self) -> list[BankResponse]:
        """Every bank with its settings and reference counts."""
        with bank_errors():
            return [BankResponse.model_validate(b, from_attributes=True) for b in BANKS.list_banks()]

    @bentoml.api(route="/banks/get")
    def banks_get(
        self, bank: BankName, offset: Annotated[int, Ge(0)] = 0, limit: PageLimit = 100, include_removed: bool = False
    ) -> BankDetailResponse:
        """A bank and one page of its references."""
        with bank_errors():
            info = BANKS.get_bank(bank)
            page = BANKS.list_references(bank, include_removed=include_removed, offset=offset, limit=limit)
        return BankDetailResponse.model_validate({**info.to_dict(), "page": [r.to_dict() for r in page]})

    @bentoml.api(route="/banks/search")
    def banks_search(self, bank: BankName, clip_id: ClipId, k: TopK = DEFAULT_K) -> BankSearchResponse:
        """The references of a bank nearest to a stored clip (the bank's current version, no restart)."""
        try:
            with bank_errors():
                return self.runtime.bank_search(BANKS, bank, clip_id, k)
        except ServingError as e:
            raise http_error(e) from e

    @bentoml.api(route="/banks/audit")
    def banks_audit(
        self,
        bank: BankName | None = None,
        ref_id: RefId | None = None,
        actor: str | None = None,
        action: str | None = None,
        limit: PageLimit = 100,
    ) -> list[AuditResponse]:
        """Audit rows, newest first, filtered by bank, reference, actor and action."""
        with bank_errors():
            rows = BANKS.audit_log(bank=bank, ref_id=ref_id, actor=actor, action=action, limit=limit)
        return [AuditResponse.model_validate(r, from_attributes=True) for r in rows]

    @bentoml.api(route="/banks/create")
    def banks_create(
        self,
        ctx: bentoml.Context,
        bank: BankName,
        kind: BankKind,
        rollout: Annotated[float, Ge(0), Le(1)] = 1.0,
        enabled: bool = True,
    ) -> BankResponse:
        """Create an empty bank (admin token)."""
        with bank_errors():
            info = BANKS.create_bank(bank, kind, request_actor(ctx), rollout=rollout, enabled=enabled)
        return BankResponse.model_validate(info, from_attributes=True)

    @bentoml.api(route="/banks/add")
    def banks_add(self, ctx: bentoml.Context, bank: BankName, references: BankRefs) -> BankChangeResponse:
        """Add references, idempotently on ref_id (admin token)."""
        refs = [NewReference(r.ref_id, r.clip_id, r.label) for r in references]
        with bank_errors():
            report = BANKS.add_references(bank, refs, request_actor(ctx))
        return BankChangeResponse.model_validate(report, from_attributes=True)

    @bentoml.api(route="/banks/remove")
    def banks_remove(self, ctx: bentoml.Context, bank: BankName, ref_ids: BankRefIds) -> BankChangeResponse:
        """Remove references (kept as removed rows: auditable) (admin token)."""
        with bank_errors():
            report = BANKS.remove_references(bank, ref_ids, request_actor(ctx))
        return BankChangeResponse.model_validate(report, from_attributes=True)

    @bentoml.api(route="/banks/disable")
    def banks_disable(self, ctx: bentoml.Context, bank: BankName, ref_ids: BankRefIds) -> BankChangeResponse:
        """Disable references (admin token)."""
        return self._set_enabled(ctx, bank, ref_ids, enabled=False)

    @bentoml.api(route="/banks/enable")
    def banks_enable(self, ctx: bentoml.Context, bank: BankName, ref_ids: BankRefIds) -> BankChangeResponse:
        """Enable references (admin token)."""
        return self._set_enabled(ctx, bank, ref_ids, enabled=True)

    @bentoml.api(route="/banks/disable_bank")
    def banks_disable_bank(self, ctx: bentoml.Context, bank: BankName) -> BankResponse:
        """Switch the whole bank off: searches skip it (admin token)."""
        return self._switch_bank(ctx, bank, enabled=False)

    @bentoml.api(route="/banks/enable_bank")
    def banks_enable_bank(self, ctx: bentoml.Context, bank: BankName) -> BankResponse:
        """Switch the whole bank on again (admin token)."""
        return self._switch_bank(ctx, bank, enabled=True)

    @staticmethod
    def _switch_bank(ctx: bentoml.Context, bank: str, enabled: bool) -> BankResponse:
        actor = request_actor(ctx)
        with bank_errors():
            info = BANKS.enable_bank(bank, actor) if enabled else BANKS.disable_bank(bank, actor)
        return BankResponse.model_validate(info, from_attributes=True)

    @staticmethod
    def _set_enabled(ctx: bentoml.Context, bank: str, ref_ids: list[str], enabled: bool) -> BankChangeResponse:
        actor = request_actor(ctx)
        with bank_errors():
            report = BANKS.enable_references(bank, ref_ids, actor) if enabled else BANKS.disable_references(bank, ref_ids, actor)
        return BankChangeResponse.model_validate(report, from_attributes=True)

    @bentoml.api(route="/banks/rollout")
    def banks_rollout(self, ctx: bentoml.Context, bank: BankName, rollout: Annotated[float, Ge(0), Le(1)]) -> BankResponse:
        """Set the share of queries the bank applies to (admin token)."""
        with bank_errors():
            info = BANKS.set_rollout(bank, rollout, request_actor(ctx))
        return BankResponse.model_validate(info, from_attributes=True)


# @bentoml.service turned the class into a bentoml.Service (mypy does not apply class decorators)
WRITE_ROUTES = frozenset(
    {
        "/rci/reload",
        "/banks/create",
        "/banks/add",
        "/banks/remove",
        "/banks/disable",
        "/banks/enable",
        "/banks/disable_bank",
        "/banks/enable_bank",
        "/banks/rollout",
    }
)
"""Routes that change what the service serves or its banks: the admin token is required (WriteAuthMiddleware)."""
ClipGuard.add_asgi_middleware(WriteAuthMiddleware, routes=WRITE_ROUTES)  # type: ignore[attr-defined]
ClipGuard.add_asgi_middleware(  # type: ignore[attr-defined]
    UploadLimitMiddleware,
    limits={
        "/rci/score_media": 2 * SERVING.max_upload_bytes + MULTIPART_OVERHEAD_BYTES,
        "/rci/search_media": SERVING.max_upload_bytes + MULTIPART_OVERHEAD_BYTES,
    },
)
