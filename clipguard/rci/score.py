"""Score video pairs from a CSV with the student: decode, encode, MatchLite, one row out per row in.

Input CSV columns:

* ``query_path``, ``candidate_path`` (required): video files; a relative path is resolved
  against ``media_root`` when given, else against the CSV's directory. With ``media_root``
  every file must lie under it (a path that escapes is a per-row error).
* ``query_title``, ``query_ocr``, ``query_asr``, ``candidate_title``, ``candidate_ocr``,
  ``candidate_asr`` (optional): the text of each video, encoded like a clip's.
* ``query_start_s``, ``query_end_s``, ``candidate_start_s``, ``candidate_end_s`` (optional):
  the window of each file; by default its first ``cfg.media.clip_seconds``.

Each distinct (file, window, text) is decoded and encoded once, with the frozen encoders
the student was trained on (:mod:`clipguard.rci.encode`, the feature-extraction code path),
then every pair is scored (:mod:`clipguard.rci.student`).

The output CSV holds the input columns plus ``score`` (P(reproduced), empty on error),
``label`` (1/0 at ``threshold``, empty without a threshold or on error), ``threshold``,
``error`` (empty, or ``"<reason>: <message>"`` naming the side and file: an unreadable file
is a per-row error, never a crash), ``model_uri``, ``model_version``, ``encoder_version`` and ``data_version`` (the training data).
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clipguard.config import Config
from clipguard.core.io import atomic_write
from clipguard.encoders.runtime import configure_threads
from clipguard.media.reader import MediaError

__all__ = ["ScoreResult", "score_pairs"]

log = logging.getLogger(__name__)

SIDES = ("query", "candidate")
TEXT_FIELDS = ("title", "ocr", "asr")
REQUIRED_COLUMNS = ("query_path", "candidate_path")
OUTPUT_COLUMNS = ("score", "label", "threshold", "error", "model_uri", "model_version", "encoder_version", "data_version")


@dataclass(frozen=True)
class ScoreResult:
    """What :func:`score_pairs` did."""

    out_csv: Path
    n_rows: int
    n_scored: int
    n_errors: int
    videos_encoded: int
    model_uri: str
    model_version: str
    encoder_version: str
    threshold: float | None
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["out_csv"] = str(self.out_csv)
        return d


def _float_or_none(value: str, column: str, path: Path) -> float | None:
    if value.strip() == "":
        return None
    try:
        return float(value)
    except ValueError as e:
        raise MediaError(path, "bad_window", f"{column}={value!r} is not a number") from e


def _side_error(side: str, e: Any) -> str:
    """``"<reason>: <side> video <path>[: <detail>]"`` for a MediaError of one side of a pair."""
    return f"{e.reason}: {side} video {e.path}" + (f": {e.detail}" if e.detail else "")


def _resolve(value: str, base: Path, media_root: Path | None) -> Path:
    """The absolute path of a CSV path value; MediaError for an empty value or one outside ``media_root``."""
    from clipguard.data.schema import resolve_media

    if not value.strip():
        raise MediaError(value, "missing_file", "empty path")
    if media_root is not None:
        return resolve_media(media_root, value)
    p = Path(value).expanduser()
    return (p if p.is_absolute() else base / p).resolve()


def score_pairs(
    pairs_csv: str | Path,
    out_csv: str | Path,
    cfg: Config,
    model_uri: str | Path | None = None,
    encoder_dir: str | Path | None = None,
    media_root: str | Path | None = None,
    threshold: float | None = None,
    progress: bool = True,
) -> ScoreResult:
    """Score every (query, candidate) row of ``pairs_csv`` with the student; write ``out_csv``.

    Args:
        pairs_csv: the input CSV (see the module docstring for its columns).
        out_csv: where the scored CSV goes (written atomically).
        cfg: media settings, batch sizes, registry location.
        model_uri: a ``models:/`` URI or a student directory (default ``cfg.rci.model_uri``,
            the registry champion).
        encoder_dir: the frozen encoders (default: ``<work_dir>/encoders/<the student's encoder version>``,
            fetched from the registry when missing).
        media_root: resolve relative paths against it and refuse files outside it.
        threshold: decision threshold for ``label`` (default: the model's stored threshold).
        progress: progress bars.

    Raises:
        ValueError: the CSV lacks ``query_path``/``candidate_path``, or the encoders do not
            match the student (another encoder version or feature size).
        FileNotFoundError / ModelNotFoundError: no encoders / no model.
    """
    from clipguard.encoders.bundle import EncoderBundle
    from clipguard.rci.encode import EncodedClip, MediaRequest, encode_media, student_modalities
    from clipguard.rci.student import load_student, resolve_encoder_dir, score_token_pairs

    t0 = time.perf_counter()
    pairs_csv = Path(pairs_csv)
    df = pd.read_csv(pairs_csv, dtype=str, keep_default_na=False)
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{pairs_csv}: missing column(s) {missing} (need {list(REQUIRED_COLUMNS)})")
    clash = [c for c in OUTPUT_COLUMNS if c in df.columns]
    if clash:
        raise ValueError(f"{pairs_csv}: input columns {clash} would be overwritten by the output")

    configure_threads(cfg.features.torch_threads)
    student = load_student(model_uri, cfg)
    enc_dir = resolve_encoder_dir(cfg, encoder_dir, student.encoder_version, encoder_model=student.encoder_model)
    bundle, enc_meta = EncoderBundle.load(enc_dir, cfg)
    enc_version = str(enc_meta["version"])
    if student.encoder_version and student.encoder_version != enc_version:
        raise ValueError(
            f"the student {student.model_version} was trained on encoder {student.encoder_version}, "
            f"but {enc_dir} is encoder {enc_version}"
        )
    thr = threshold if threshold is not None else student.threshold

    base = pairs_csv.resolve().parent
    root = Path(media_root).resolve() if media_root is not None else None
    requests: dict[str, MediaRequest] = {}
    row_keys: list[tuple[str, str] | None] = []
    errors: list[str] = [""] * len(df)
    for i, row in enumerate(df.to_dict("records")):
        wanted: list[MediaRequest] = []
        for side in SIDES:
            try:
                path = _resolve(row[f"{side}_path"], base, root)
                start = _float_or_none(row.get(f"{side}_start_s", ""), f"{side}_start_s", path)
                end = _float_or_none(row.get(f"{side}_end_s", ""), f"{side}_end_s", path)
            except MediaError as e:
                errors[i] = _side_error(side, e)
                break
            texts = {f: row.get(f"{side}_{f}", "") for f in TEXT_FIELDS}
            key = hashlib.sha1(repr((str(path), start, end, sorted(texts.items()))).encode()).hexdigest()[:16]
            wanted.append(MediaRequest(key, path, start, end, **texts))
        if errors[i]:
            row_keys.append(None)
            continue
        for r in wanted:  # each distinct (file, window, text) is encoded once
            requests.setdefault(r.key, r)
        row_keys.append((wanted[0].key, wanted[1].key))

    encoded = encode_media(list(requests.values()), bundle, cfg, progress)
    del bundle
    modalities = student_modalities(student.model.config)
    scorable: list[int] = []
    queries, candidates = [], []
    for i, keys in enumerate(row_keys):
        if keys is None:
            continue
        sides = [encoded[k] for k in keys]
        bad = [(side, e) for side, e in zip(SIDES, sides) if isinstance(e, MediaError)]
        if bad:
            errors[i] = "; ".join(_side_error(side, e) for side, e in bad)
            continue
        q, c = (s for s in sides if isinstance(s, EncodedClip))
        queries.append({m: q.tokens[m] for m in modalities})
        candidates.append({m: c.tokens[m] for m in modalities})
        scorable.append(i)

    probs = score_token_pairs(student, queries, candidates, cfg.rci.batch_size, progress)
    scores = np.full(len(df), np.nan)
    scores[scorable] = probs
    out = df.copy()
    out["score"] = scores
    labels = pd.array([pd.NA] * len(df), dtype="Int64")
    if thr is not None:
        for i in scorable:
            labels[i] = int(scores[i] >= thr)
    out["label"] = labels
    out["threshold"] = thr if thr is not None else math.nan
    out["error"] = errors
    out["model_uri"] = student.model_uri
    out["model_version"] = student.model_version
    out["data_version"] = student.data_version or ""
    out["encoder_version"] = enc_version
    out_path = Path(out_csv)
    atomic_write(out_path, lambda p: out.to_csv(p, index=False, na_rep=""))
    n_err = sum(1 for message in errors if message)
    for i, message in enumerate(errors):
        if message:
            log.warning("row %d not scored: %s", i, message)
    result = ScoreResult(
        out_path,
        len(df),
        len(scorable),
        n_err,
        sum(isinstance(v, EncodedClip) for v in encoded.values()),
        student.model_uri,
        student.model_version,
        enc_version,
        thr,
        time.perf_counter() - t0,
    )
    log.info(
        "scored %d of %d pair(s) (%d error(s)) in %.1f s -> %s", result.n_scored, result.n_rows, n_err, result.seconds, out_path
    )
    return result
