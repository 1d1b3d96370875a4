"""What the RCI service does, as plain library code (no BentoML): load, look up, score, search, reload.

:class:`ServingRuntime` composes the library's pieces for one serving process:

* **Model**: ``cfg.rci.model_uri`` — a registry URI (``models:/clipguard-student@champion``
  by default, or ``models:/<name>/<version>``) or a student directory — loaded with
  :func:`clipguard.rci.student.load_student` (no pickle; threshold and encoder version from
  the model's lineage). A model that records no threshold is labelled at
  ``serving.default_threshold``.
* **Cached features**: a feature version directory in the layout of
  :mod:`clipguard.features.store_format`. Clip ids are located either in its feature table
  (:class:`FileFeatureSource`, read once at start-up) or in the Feast online store of that
  version (:class:`FeastFeatureSource`, per request); the token matrices come from the
  version's safetensors shards through :class:`TokenReader` (an LRU cache of recently used
  clips) and are laid out for the student by :func:`clipguard.rci.encode.clip_features`,
  exactly as training and evaluation do, so served scores equal evaluation scores.
* **Index** (optional, ``serving.index_dir``): a FAISS index (:mod:`clipguard.index`) over the
  same encoder version's clip embeddings, for top-k retrieval.
* **Media** (optional): the frozen encoders of that encoder version (``serving.encoder_dir``,
  else the directory the features record, else ``<work_dir>/encoders/<encoder_version>``), so
  uploaded videos are decoded and encoded with :func:`clipguard.rci.encode.encode_media`,
  the feature-extraction code path, and scored or searched like stored clips.

**Reload.** When the model URI names an alias, a background thread resolves the alias
every ``serving.reload_interval_s`` seconds (one registry call, no download) and, when it
points at another version, loads that version beside the serving one, checks it against
the features (encoder version, token widths) and swaps everything in at once; requests in
flight finish on the model they started with. :meth:`ServingRuntime.refresh` forces the
same check (the service's ``rci/reload``). A model directory or a pinned version is never
reloaded: restart the service to change it.

While the first load fails (say, the registry is not reachable yet) the runtime retries every
``LOAD_RETRY_S`` seconds; health reports ``failed`` with the reason and requests get 503.

Errors a client caused are :class:`ServingError` subclasses carrying an HTTP status; the
service turns them into 4xx/503 responses.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from clipguard.config import Config, load_config
from clipguard.encoders.runtime import available_cpus, configure_threads
from clipguard.index.faiss_index import load_index
from clipguard.serving.errors import (
    ClipNotFoundError,
    DisabledError,
    IncompatibleModelError,
    NotReadyError,
    PayloadTooLargeError,
)
from clipguard.serving.features import (
    ClipTokens,
    FeatureSource,
    TokenReader,
    open_feature_source,
    resolve_serving_features,
)
from clipguard.serving.media import MediaEncoder, load_media_encoder
from clipguard.serving.model import (
    ServedModel,
    load_served_model,
    parse_model_uri,
    resolve_registry_version,
)
from clipguard.serving.schemas import (
    BankMatchResponse,
    BankSearchResponse,
    Candidate,
    HealthResponse,
    PairScore,
    SearchResponse,
)

if TYPE_CHECKING:
    from clipguard.banks import BankSearcher, BankStore
    from clipguard.index.faiss_index import ClipIndex

log = logging.getLogger(__name__)

LOAD_RETRY_S = 30.0
"""Seconds between attempts while the first load fails (e.g. the registry is not reachable yet)."""


# --------------------------------------------------------------------------- config


OVERRIDES_ENV = "CLIPGUARD_OVERRIDES"
"""Environment variable: a JSON object of dotted config keys that wins over bento arguments."""


def config_from_arguments(arguments: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Config:
    """The configuration of a service: bento arguments, then ``$CLIPGUARD_OVERRIDES``.

    ``arguments`` are the bento arguments (``bentoml serve <module:Service> --arg k=v``, or
    the ``--arg`` values a bento was built with): ``profile`` picks the profile (default
    ``$CLIPGUARD_PROFILE`` or ``local``), every other key is a dotted config key
    (``rci.model_uri``, ``serving.features_dir``, ...); string values are read as YAML, like
    ``clipguard --set``, so ``serving.batching=false`` is a boolean. A built bento is served
    with the arguments it was built with (BentoML ignores ``--arg`` then), so deployment
    settings go in ``$CLIPGUARD_OVERRIDES`` (``{"rci.model_uri": "...", ...}``), which wins.

    Raises:
        ValueError: ``$CLIPGUARD_OVERRIDES`` is not a JSON object.
    """
    import json

    import yaml

    values = dict(arguments)
    profile = values.pop("profile", None)
    overrides = {k: yaml.safe_load(v) if isinstance(v, str) else v for k, v in values.items()}
    raw = (os.environ if environ is None else environ).get(OVERRIDES_ENV, "").strip()
    if raw:
        env = json.loads(raw)
        if not isinstance(env, dict):
            raise ValueError(f"${OVERRIDES_ENV} must be a JSON object of dotted config keys, got {raw[:80]!r}")
        profile = env.pop("profile", profile)
        overrides.update(env)
    return load_config(str(profile) if profile else None, overrides)


# --------------------------------------------------------------------------- runtime


@dataclass(frozen=True)
class _Served:
    """One consistent set of what is served; swapped as a whole on reload."""

    model: ServedModel
    source: FeatureSource
    reader: TokenReader
    index: ClipIndex | None
    media: MediaEncoder | None

    @property
    def index_version(self) -> str | None:
        return None if self.index is None else self.index.version


def _model_limits(served_model: ServedModel) -> dict[str, int]:
    """Modality -> max tokens, for the modalities the student reads."""
    from clipguard.rci.encode import student_modalities

    config = served_model.student.model.config
    return {m: config.max_tokens(m) for m in student_modalities(config)}


class ServingRuntime:
    """Everything one serving process holds; thread-safe.

    Construct it, call :meth:`start` (loads in a background thread and keeps the champion
    alias watched) or :meth:`load` (blocking), then score and search. Until a model is
    loaded the scoring methods raise :class:`NotReadyError`.
    """

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.ref = parse_model_uri(cfg.rci.model_uri)
        self._served: _Served | None = None
        self._error: str | None = None
        self._stop = threading.Event()
        self._reload_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.last_reload_check: float | None = None
        self.last_reload_error: str | None = None
        self.reloads = 0
        self.score_calls = 0
        self.scored_pairs = 0
        self._bank_searchers: dict[tuple[str, str], BankSearcher] = {}
        self._bank_lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Load in a background thread, then check the champion alias periodically."""
        self._thread = threading.Thread(target=self._run, name="clipguard-serving", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the reload thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        """Load (retrying every ``LOAD_RETRY_S`` until it works), then watch the champion alias."""
        while True:
            try:
                self.load()
                break
            except Exception as e:  # reported by health(); requests are answered 503 meanwhile
                log.exception("loading the RCI service failed; retrying in %.0f s", LOAD_RETRY_S)
                self._error = f"{type(e).__name__}: {e}"
                if self._stop.wait(LOAD_RETRY_S):
                    return
        interval = self.cfg.serving.reload_interval_s
        if not (self.ref.follows_alias and interval > 0):
            return
        while not self._stop.wait(interval):
            try:
                self.refresh()
            except Exception:  # the serving model stays; the next check tries again
                log.exception("champion reload check failed; still serving %s", self.served.model.version)

    def load(self) -> None:
        """Load model, features, index and encoders (blocking); raises what went wrong."""
        configure_threads(self.cfg.serving.torch_threads or max(1, available_cpus() - 1))
        with self._reload_lock:
            self.last_reload_check = time.time()
            model = load_served_model(self.cfg, self.ref, resolve_registry_version(self.ref, self.cfg))
            self._served = self._assemble(model, None)
            self._error = None
        self._freeze_heap()
        s = self._served
        log.info(
            "serving %s (features %s, index %s, uploads encoded with %s, threshold %.4f: %s)",
            model.version,
            s.source.root,
            s.index_version,
            s.media.encoder_dir if s.media else None,
            model.threshold,
            model.threshold_source,
        )

    def _freeze_heap(self) -> None:
        """``serving.gc_freeze``: move everything alive now to the permanent generation.

        The objects of the loaded model, features index and libraries (hundreds of thousands)
        then no longer take part in full collections, which otherwise pause a request now
        and then for tens of milliseconds. Objects made later (cached tokens, requests) are
        collected as usual. A reload unfreezes first, so the replaced model can be freed, then
        freezes again.
        """
        if self.cfg.serving.gc_freeze:
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            log.info("gc.freeze(): %d objects moved to the permanent generation", gc.get_freeze_count())

    def _assemble(self, model: ServedModel, current: _Served | None) -> _Served:
        """Features, reader, index and encoders for ``model``, reusing ``current``'s where they fit."""
        root = resolve_serving_features(self.cfg, model.student.encoder_version)
        same_root = current is not None and current.source.root == root
        source = current.source if current is not None and same_root else open_feature_source(root, self.cfg)
        limits = _model_limits(model)
        if current is not None and same_root and current.reader.limits == limits:
            reader = current.reader
        else:
            reader = TokenReader(root, limits, self.cfg.serving.feature_cache_clips)
        self._check_widths(model, source, reader)
        index = current.index if current is not None else self._load_index()
        if index is not None and index.encoder_version not in (None, source.encoder_version):
            raise IncompatibleModelError(
                f"index {index.version} holds encoder {index.encoder_version!r} embeddings, the features {source.encoder_version!r}"
            )
        if current is not None and same_root:
            media = current.media
        else:
            media = load_media_encoder(self.cfg, root, source.encoder_version, model.student.encoder_model)
        return _Served(model, source, reader, index, media)

    def _load_index(self) -> ClipIndex | None:
        if not self.cfg.serving.index_dir:
            return None
        return load_index(self.cfg.serving.index_dir)

    @staticmethod
    def _check_widths(model: ServedModel, source: FeatureSource, reader: TokenReader) -> None:
        """Fail at load, not per request, when the features do not fit the student."""
        sample = source.any_clip()
        if sample is None:
            return
        from clipguard.rci.encode import clip_features

        tokens = reader.read({sample[0]: sample[1]})[sample[0]]
        try:
            clip_features([tokens], model.student.model.config)
        except ValueError as e:
            raise IncompatibleModelError(f"{model.version} cannot read {source.root}: {e}") from e

    def refresh(self) -> bool:
        """Check the alias now; load and swap in the version it points at if it changed.

        On failure the serving model stays and the error is kept for :meth:`health`.

        Returns:
            Whether a new model is being served.

        Raises:
            ModelNotFoundError: the alias or version is gone; IncompatibleModelError /
                TypeError: the new champion cannot be served with these features; anything
                the registry client raises (e.g. the tracking server is unreachable).
        """
        if not self.ref.follows_alias:
            return False
        with self._reload_lock:
            self.last_reload_check = time.time()
            try:
                version = resolve_registry_version(self.ref, self.cfg)
                current = self._served
                if current is not None and current.model.registry_version == version:
                    self.last_reload_error = None
                    return False
                model = load_served_model(self.cfg, self.ref, version)
                self._served = self._assemble(model, current)
            except Exception as e:
                self.last_reload_error = f"{type(e).__name__}: {e}"
                raise
            self._error = self.last_reload_error = None
            self.reloads += 1
        self._freeze_heap()
        log.info("the champion moved: now serving %s", model.version)
        return True

    # -- state ----------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._served is not None

    @property
    def served(self) -> _Served:
        """The current model, features, index and encoders (:class:`NotReadyError` before loading)."""
        served = self._served
        if served is None:
            raise NotReadyError(f"the model failed to load: {self._error}" if self._error else "the model is loading")
        return served

    def reload_policy(self) -> str:
        """How this runtime picks up a new model."""
        if self.ref.follows_alias:
            interval = self.cfg.serving.reload_interval_s
            every = f"every {interval:g} s and on rci/reload" if interval > 0 else "on rci/reload only"
            return f"alias {self.ref.alias!r} of {self.ref.registry_name!r} checked {every}"
        return "fixed model: restart to change it"

    def health(self) -> HealthResponse:
        """Readiness and what is loaded."""
        s = self.cfg.serving
        served = self._served
        out: dict[str, Any] = {
            "status": "ready" if served is not None else ("failed" if self._error else "loading"),
            "detail": self._error,
            "model_uri": self.cfg.rci.model_uri,
            "feature_source": s.feature_source,
            "batching": s.batching,
            "max_batch_size": s.max_batch_size,
            "max_latency_ms": s.max_latency_ms,
            "reload": self.reload_policy(),
            "last_reload_check": self.last_reload_check,
            "last_reload_error": self.last_reload_error,
            "reloads": self.reloads,
            "score_calls": self.score_calls,
            "scored_pairs": self.scored_pairs,
        }
        if served is not None:
            out.update(
                model_version=served.model.version,
                encoder_version=served.source.encoder_version,
                index_version=served.index_version,
                data_version=served.model.student.data_version,
                threshold=served.model.threshold,
                threshold_source=served.model.threshold_source,
                features_dir=str(served.source.root),
                clips=served.source.size,
                index_vectors=None if served.index is None else served.index.n_vectors,
                media=served.media is not None,
                loaded_at=served.model.loaded_at,
            )
        return HealthResponse(**out)

    # -- scoring --------------------------------------------------------------------------

    def _forward(self, served: _Served, queries: Sequence[ClipTokens], candidates: Sequence[ClipTokens]) -> list[float]:
        """P(reproduced) of each (query, candidate), ``serving.max_batch_size`` pairs per forward pass."""
        import torch

        from clipguard.rci.encode import clip_features

        model = served.model.student.model
        step = self.cfg.serving.max_batch_size
        out: list[float] = []
        with torch.inference_mode():
            for i in range(0, len(queries), step):
                q = clip_features(queries[i : i + step], model.config)
                c = clip_features(candidates[i : i + step], model.config)
                out += model(q, c).logits["rci"].softmax(dim=-1)[:, 1].tolist()
        return out

    def _pair_score(self, served: _Served, query: str | None, candidate: str | None, score: float) -> PairScore:
        return PairScore(
            query_clip_id=query,
            candidate_clip_id=candidate,
            score=score,
            label=score >= served.model.threshold,
            threshold=served.model.threshold,
            model_version=served.model.version,
            encoder_version=served.source.encoder_version,
            index_version=served.index_version,
            data_version=served.model.student.data_version,
        )

    def require_pairs(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Check that every clip of ``pairs`` has cached features.

        Raises:
            ClipNotFoundError: naming every unknown clip id; NotReadyError: still loading.
        """
        self.served.source.require(list(dict.fromkeys(c for pair in pairs for c in pair)))

    def score_pairs(self, pairs: Sequence[tuple[str, str]]) -> list[PairScore]:
        """Score clip-id pairs with one snapshot of model and features.

        Raises:
            ClipNotFoundError: a clip without cached features; NotReadyError: still loading.
        """
        served = self.served
        tokens = served.reader.read(served.source.require(list(dict.fromkeys(c for pair in pairs for c in pair))))
        scores = self._forward(served, [tokens[q] for q, _ in pairs], [tokens[c] for _, c in pairs])
        self.score_calls += 1
        self.scored_pairs += len(pairs)
        return [self._pair_score(served, q, c, p) for (q, c), p in zip(pairs, scores)]

    def _media(self, served: _Served) -> MediaEncoder:
        if served.media is None:
            raise DisabledError(
                "media endpoints are off: no encoders for encoder version "
                f"{served.source.encoder_version} (set serving.encoder_dir)"
            )
        return served.media

    def check_upload(self, name: str, path: Path) -> None:
        """Raise :class:`PayloadTooLargeError` for an upload above ``serving.max_upload_bytes``."""
        size, limit = path.stat().st_size, self.cfg.serving.max_upload_bytes
        if size > limit:
            raise PayloadTooLargeError(f"upload {name!r} is {size} bytes; the limit is {limit}")

    def score_media(self, query: Path, candidate: Path, query_text: str = "", candidate_text: str = "") -> PairScore:
        """Decode and encode two uploaded videos and score them as (query, candidate).

        Raises:
            DisabledError: no encoders; UnprocessableMediaError: a file that does not decode.
        """
        served = self.served
        media = self._media(served)
        q_tokens, _ = media.encode(query, query_text, self.cfg)
        c_tokens, _ = media.encode(candidate, candidate_text, self.cfg)
        return self._pair_score(served, None, None, self._forward(served, [q_tokens], [c_tokens])[0])

    # -- search ---------------------------------------------------------------------------

    def _search(self, served: _Served, query_id: str | None, tokens: ClipTokens, embedding: np.ndarray, k: int) -> SearchResponse:
        """Top-``k`` index neighbours of ``embedding`` (``query_id`` itself excluded), each scored."""
        if served.index is None:
            raise DisabledError("rci/search is off: this service runs without an index (serving.index_dir)")
        found = served.index.search(embedding[None, :], k + 1 if query_id is not None else k)
        ids = found.clip_ids[0]
        hits = [(c, float(s)) for c, s in zip(ids, found.similarities[0][: len(ids)]) if c != query_id][:k]
        refs = served.source.locate([c for c, _ in hits])
        hits = [(c, s) for c, s in hits if c in refs]  # an index clip without features cannot be scored
        stored = served.reader.read(refs)
        scores = self._forward(served, [tokens] * len(hits), [stored[c] for c, _ in hits])
        threshold = served.model.threshold
        return SearchResponse(
            query_clip_id=query_id,
            k=k,
            threshold=threshold,
            candidates=[Candidate(clip_id=c, similarity=s, score=p, label=p >= threshold) for (c, s), p in zip(hits, scores)],
            model_version=served.model.version,
            encoder_version=served.source.encoder_version,
            index_version=served.index_version,
            data_version=served.model.student.data_version,
        )

    def search(self, clip_id: str, k: int) -> SearchResponse:
        """The ``k`` clips most similar to stored clip ``clip_id`` in the index, each scored.

        Raises:
            DisabledError: no index; ClipNotFoundError: unknown ``clip_id``.
        """
        served = self.served
        if served.index is None:
            raise DisabledError("rci/search is off: this service runs without an index (serving.index_dir)")
        ref = served.source.require([clip_id])[clip_id]
        if ref.embedding is None:
            raise ClipNotFoundError([clip_id])
        return self._search(served, clip_id, served.reader.read({clip_id: ref})[clip_id], ref.embedding, k)

    def bank_search(self, store: BankStore, bank: str, clip_id: str, k: int) -> BankSearchResponse:
        """The ``k`` references of ``bank`` nearest to stored clip ``clip_id``.

        One :class:`clipguard.banks.BankSearcher` per bank and served feature version, built on
        the first search (its references' embeddings from the served features) and brought up to
        the bank's ``content_version`` by the searcher itself (every ``banks.refresh_interval_s``):
        bank changes reach searches without a restart.

        Raises:
            ClipNotFoundError: unknown ``clip_id``; BankError: unknown bank, a reference whose
                clip has no served features, the bank database unreachable.
        """
        from clipguard.banks import BankSearcher, ClipEmbeddings

        served = self.served
        ref = served.source.require([clip_id])[clip_id]
        if ref.embedding is None:
            raise ClipNotFoundError([clip_id])
        key = (bank, str(served.source.root))
        with self._bank_lock:
            searcher = self._bank_searchers.get(key)
            if searcher is None:
                embeddings = ClipEmbeddings.from_features(served.source.root)
                searcher = BankSearcher.from_config(self.cfg, bank, embeddings, store)
                self._bank_searchers[key] = searcher
        found = searcher.search(np.asarray(ref.embedding, dtype=np.float32)[None], [clip_id], k)
        return BankSearchResponse(
            bank=bank,
            content_version=found.content_version,
            applied=found.applied[0],
            matches=[BankMatchResponse(**vars(m)) for m in found.matches[0]],
            model_version=served.model.version,
            encoder_version=served.source.encoder_version,
            data_version=served.model.student.data_version,
        )

    def search_media(self, video: Path, k: int, text: str = "") -> SearchResponse:
        """The ``k`` clips of the index most similar to an uploaded video, each scored.

        Raises:
            DisabledError: no index or no encoders; UnprocessableMediaError: the file does not decode.
        """
        served = self.served
        if served.index is None:
            raise DisabledError("rci/search is off: this service runs without an index (serving.index_dir)")
        tokens, embedding = self._media(served).encode(video, text, self.cfg)
        return self._search(served, None, tokens, embedding, k)
