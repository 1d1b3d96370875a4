"""Search the index with a video and score the candidates with the student (MatchLM2Lite §5.1).

Serving as in the paper: the query video is encoded (:mod:`clipguard.rci.encode`, the
feature-extraction code path), its 128-d clip embedding retrieves the ``top_k`` most
similar clips from the FAISS index (:mod:`clipguard.index`), and MatchLite scores each
(query, candidate) pair from the query's fresh tokens and the candidates' *stored* tokens
(the feature directory the index was built from).

Everything is checked to come from one encoder version: the index's, the stored
features', the encoders used for the query and the student's training features, and the
query is decoded with the extraction settings the bank was extracted with.

:class:`VideoSearcher` loads the index, student and encoders once (for a service);
:func:`search_video` is the one-shot form.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from clipguard.config import Config
from clipguard.encoders.runtime import configure_threads
from clipguard.features.store_format import read_manifest, resolve_features_dir
from clipguard.index.faiss_index import latest_index_dir, load_index

__all__ = ["VideoSearcher", "search_video"]

log = logging.getLogger(__name__)


class VideoSearcher:
    """An index, its stored features, the student and the encoders, loaded once.

    Args:
        cfg: media settings, batch size, registry location, default model.
        index_dir: an index directory written by :func:`clipguard.index.build_index`.
        model_uri: the student (``models:/`` URI or directory; default ``cfg.rci.model_uri``).
        encoder_dir: the frozen encoders (default: the one recorded by the features, else
            ``<work_dir>/encoders/<the index's encoder version>``).
        features_dir: the candidates' stored features (default: the index's ``features_dir``).

    Raises:
        ValueError: the index, features, encoders, student or media settings disagree.
    """

    def __init__(
        self,
        cfg: Config,
        index_dir: str | Path,
        model_uri: str | Path | None = None,
        encoder_dir: str | Path | None = None,
        features_dir: str | Path | None = None,
    ) -> None:
        from clipguard.encoders.bundle import EncoderBundle
        from clipguard.rci.encode import extraction_settings
        from clipguard.rci.student import load_student, resolve_encoder_dir

        self.cfg = cfg
        self.index = load_index(index_dir)
        version = self.index.encoder_version
        source = features_dir if features_dir is not None else self.index.meta.get("features_dir")
        if source is None:
            raise ValueError(f"{index_dir} records no features_dir: pass the features the index was built from")
        self.features_dir = resolve_features_dir(source)
        manifest = read_manifest(self.features_dir)
        if version is not None and manifest.get("encoder_version") != version:
            raise ValueError(
                f"{self.features_dir} holds encoder {manifest.get('encoder_version')} features, the index encoder {version}"
            )
        self.student = load_student(model_uri, cfg)
        if self.student.encoder_version and version and self.student.encoder_version != version:
            raise ValueError(
                f"the student {self.student.model_version} was trained on encoder {self.student.encoder_version} "
                f"features, the index holds encoder {version}"
            )
        if encoder_dir is None and manifest.get("encoder_dir") and Path(manifest["encoder_dir"]).is_dir():
            encoder_dir = manifest["encoder_dir"]
        enc_dir = resolve_encoder_dir(
            cfg, encoder_dir, version, self.student.encoder_version, encoder_model=self.student.encoder_model
        )
        self.bundle, meta = EncoderBundle.load(enc_dir, cfg)
        self.encoder_version = str(meta["version"])
        if version is not None and self.encoder_version != version:
            raise ValueError(f"{enc_dir} is encoder {self.encoder_version}, the index holds encoder {version} embeddings")
        stored = manifest.get("settings")
        wanted = extraction_settings(cfg, self.encoder_version)
        if stored is not None and stored != wanted:
            diff = sorted(k for k in wanted if stored.get(k) != wanted[k])
            raise ValueError(f"the bank was extracted with other settings ({', '.join(diff)}): use its profile/config")

    def search(
        self,
        video_path: str | Path,
        top_k: int | None = None,
        title: str = "",
        ocr: str = "",
        asr: str = "",
        start_s: float | None = None,
        end_s: float | None = None,
        progress: bool = False,
    ) -> list[dict[str, Any]]:
        """Retrieve the ``top_k`` clips most similar to the video's window and score each pair.

        Returns one dict per candidate, in retrieval order: ``rank``, ``clip_id``,
        ``similarity`` (cosine of the clip embeddings), ``score`` (the student's
        P(reproduced)), ``label`` (at the model's threshold; None without one),
        ``threshold``, ``model_uri``, ``model_version``, ``encoder_version``, ``data_version``,
        ``index_version``.

        Raises:
            MediaError: the video cannot be decoded.
        """
        from clipguard.rci.encode import EncodedClip, MediaRequest, encode_media, student_modalities, tokens_from_store
        from clipguard.rci.student import score_token_pairs

        k = int(top_k or self.cfg.rci.top_k)
        request = MediaRequest("query", Path(video_path).resolve(), start_s, end_s, title, ocr, asr)
        query = encode_media([request], self.bundle, self.cfg, progress)["query"]
        if not isinstance(query, EncodedClip):
            raise query
        found = self.index.search(query.embedding[None, :], k)
        ids = found.clip_ids[0]
        sims = found.similarities[0][: len(ids)]
        modalities = student_modalities(self.student.model.config)
        q_tokens = {m: query.tokens[m] for m in modalities}
        candidates = tokens_from_store(self.features_dir, ids, modalities)
        scores = score_token_pairs(self.student, [q_tokens] * len(ids), candidates, self.cfg.rci.batch_size)
        thr = self.student.threshold
        return [
            {
                "rank": r + 1,
                "clip_id": cid,
                "similarity": float(sim),
                "score": float(score),
                "label": int(score >= thr) if thr is not None else None,
                "threshold": thr,
                "model_uri": self.student.model_uri,
                "model_version": self.student.model_version,
                "encoder_version": self.encoder_version,
                "index_version": self.index.version,
                "data_version": self.student.data_version,
            }
            for r, (cid, sim, score) in enumerate(zip(ids, sims, scores))
        ]


def search_video(
    video_path: str | Path,
    cfg: Config,
    index_dir: str | Path | None = None,
    top_k: int | None = None,
    model_uri: str | Path | None = None,
    encoder_dir: str | Path | None = None,
    features_dir: str | Path | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """One-shot :meth:`VideoSearcher.search` (loads index, student and encoders, then searches).

    ``index_dir`` defaults to the most recently built index under ``<work_dir>/<cfg.index.dir>``
    (:func:`clipguard.index.latest_index_dir`); ``top_k`` to ``cfg.rci.top_k``.
    """
    configure_threads(cfg.features.torch_threads)
    searcher = VideoSearcher(
        cfg, index_dir if index_dir is not None else latest_index_dir(cfg), model_uri, encoder_dir, features_dir
    )
    return searcher.search(video_path, top_k, progress=progress)
