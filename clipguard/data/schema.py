"""The data contract: clip and pair manifests (Parquet).

A **clip** is a window ``[start_s, end_s)`` of a video file; a **pair** is a
(query clip, candidate clip) for reproduced-content identification (RCI).
``video_uri`` is a path relative to the data root (absolute paths must still lie
under it). Extra columns are allowed and carried through validation untouched.

The layout of a data root::

    <root>/corpus.json              generator metadata (synthetic corpora only)
    <root>/videos/...               media
    <root>/manifests/clips.parquet
    <root>/manifests/pairs.parquet
    <root>/validated/               written by `clipguard data validate`
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from clipguard.media.reader import MediaError

CLIPS_FILE = "manifests/clips.parquet"
PAIRS_FILE = "manifests/pairs.parquet"
VALIDATED_DIR = "validated"

SPLITS = ("train", "val", "test", "traffic")
"""train/val/test come from the days before the trend; ``traffic`` is later live traffic."""

PAIR_REASONS = ("visual", "audio", "text", "none")
"""Which modality decides an RCI pair's label (``none`` for non-copies with no such cue)."""

TEXT_FIELDS = ("title", "ocr", "asr")


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    nullable: bool = False
    doc: str = ""


CLIP_COLUMNS: tuple[Column, ...] = (
    Column("clip_id", pa.string(), doc="unique id of the clip"),
    Column("video_uri", pa.string(), doc="media path relative to the data root"),
    Column("start_s", pa.float64(), doc="clip start in the video (seconds)"),
    Column("end_s", pa.float64(), doc="clip end in the video (seconds), > start_s"),
    Column("title", pa.string(), doc="uploader title / stream caption"),
    Column("ocr", pa.string(), doc="on-screen text"),
    Column("asr", pa.string(), doc="speech transcript"),
    Column("labels", pa.list_(pa.string()), doc="policy labels (multi-label, empty = benign)"),
    Column("event_timestamp", pa.timestamp("us", tz="UTC"), doc="when the clip was published"),
    Column("source", pa.string(), doc="where the clip came from (upload, livestream, ...)"),
    Column("split", pa.string(), doc="train / val / test / traffic"),
)

PAIR_COLUMNS: tuple[Column, ...] = (
    Column("pair_id", pa.string(), doc="unique id of the pair"),
    Column("query_clip_id", pa.string(), doc="clip_id of the query"),
    Column("candidate_clip_id", pa.string(), doc="clip_id of the candidate"),
    Column("label", pa.int64(), doc="1 = reproduced content, 0 = not"),
    Column("reason", pa.string(), doc="visual / audio / text / none"),
    Column("event_timestamp", pa.timestamp("us", tz="UTC"), doc="when the pair was labelled"),
    Column("split", pa.string(), doc="train / val / test / traffic"),
)


def column_names(columns: tuple[Column, ...]) -> list[str]:
    return [c.name for c in columns]


def arrow_schema(columns: tuple[Column, ...]) -> pa.Schema:
    return pa.schema([pa.field(c.name, c.type, nullable=c.nullable) for c in columns])


def manifest_paths(root: Path | str) -> tuple[Path, Path]:
    root = Path(root)
    return root / CLIPS_FILE, root / PAIRS_FILE


# Machine-readable quarantine reasons. A quarantined row carries one or more of these codes
# (as ``code`` or ``code:column``) plus a human-readable message naming the item.
REASONS = {
    "schema_missing_column": "a required column is missing from the manifest",
    "bad_type": "a value cannot be converted to the column's type",
    "null_value": "a required value is missing (null/empty)",
    "non_finite": "a numeric value is NaN or infinite",
    "duplicate_id": "the id appears more than once in the manifest",
    "bad_window": "start_s/end_s do not form a valid window",
    "bad_timestamp": "event_timestamp does not parse or is out of range",
    "text_too_long": "a text field exceeds its length bound",
    "unknown_label": "a policy label is not in the taxonomy",
    "unknown_split": "split is not one of the known splits",
    "unknown_reason": "pair reason is not one of visual/audio/text/none",
    "bad_label": "pair label is not 0 or 1",
    "self_pair": "query and candidate are the same clip",
    "unknown_clip": "a pair refers to a clip that is not an accepted clip",
    "path_outside_root": "the media path resolves outside the data root",
    "missing_file": "the media file does not exist",
    "empty_file": "the media file has zero length",
    "oversized_file": "the media file is larger than the upload limit",
    "decode_error": "the media file cannot be opened or decoded",
    "decode_timeout": "decoding the media took longer than media.decode_timeout_s",
    "no_video_stream": "the media file has no video stream",
    "duration_out_of_range": "the media duration is outside the allowed range",
    "window_beyond_media": "the clip window ends after the media ends",
    "no_audio": "the media has no audio track (quarantined only when configured)",
    "variable_frame_rate": "the media has a variable frame rate (quarantined only when configured)",
}


DATA_VERSION_FILE = "data_version"
"""``validated/data_version``: the version validation computed for the accepted manifests."""


def resolve_media(root: Path | str, uri: str) -> Path:
    """A manifest's media path resolved against the data root (symlinks followed); it must stay
    inside the root.

    Raises :class:`clipguard.media.reader.MediaError`: ``path_outside_root`` (also for a
    symbolic link that points outside), or ``missing_file`` for a path that cannot be resolved
    at all (NUL bytes, symlink loops).
    """
    root = Path(root).resolve()
    candidate = Path(uri)
    try:
        resolved = (candidate if candidate.is_absolute() else root / candidate).resolve()
    except (OSError, RuntimeError, ValueError) as e:  # NUL bytes, symlink loops
        raise MediaError(uri, "missing_file", f"{uri} is not a usable path ({e})") from e
    if not resolved.is_relative_to(root):
        raise MediaError(uri, "path_outside_root", f"{uri} resolves outside the data root {root}")
    return resolved


def hash_manifests(validated_dir: Path | str) -> str:
    """A short hash of the accepted manifests in ``validated_dir`` (``d`` + 12 hex digits)."""
    import hashlib

    h = hashlib.sha256()
    for name in ("clips.parquet", "pairs.parquet"):
        p = Path(validated_dir) / name
        if p.is_file():
            h.update(name.encode())
            h.update(p.read_bytes())
    return "d" + h.hexdigest()[:12]


def data_version(root: Path | str) -> str:
    """Version of a validated data root: the one validation recorded in
    ``validated/data_version`` (computed once, when the accepted manifests were written, and
    carried with the root); :func:`hash_manifests` for a root written without validation.

    Every downstream artifact (features, models, indexes) records it as lineage.
    """
    return validated_data_version(Path(root) / VALIDATED_DIR)


def validated_data_version(validated_dir: Path | str) -> str:
    """The version of the accepted manifests in ``validated_dir``: its recorded
    ``data_version`` file, else :func:`hash_manifests`."""
    recorded = Path(validated_dir) / DATA_VERSION_FILE
    return recorded.read_text().strip() if recorded.is_file() else hash_manifests(validated_dir)
