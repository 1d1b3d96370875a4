"""Point the data contract at your own videos.

:func:`ingest_videos` walks a folder of media under a data root, probes each file, cuts
it into clip windows with :func:`clipguard.media.clipper.plan_windows`, and writes a clip
manifest in the contract's schema. Optional metadata (CSV or Parquet, keyed by
``video_uri``) supplies titles, OCR/ASR text, labels, timestamps, source and split.
Every entry with a video suffix is checked as validation checks media
(:func:`clipguard.data.validate.inspect_media`: the path stays inside the root, symlinks
included; size; a probe under ``media.decode_timeout_s``; the duration bounds). Files that
fail are not dropped: they are listed, with the reason, in
``manifests/ingest_quarantine.parquet`` and counted (``in == ingested + quarantined``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from clipguard.config import Config
from clipguard.data.schema import CLIP_COLUMNS, CLIPS_FILE, arrow_schema, column_names
from clipguard.data.validate import inspect_media
from clipguard.media.clipper import plan_windows
from clipguard.media.reader import MediaError

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".ts", ".flv")


@dataclass(frozen=True)
class IngestResult:
    files_in: int
    files_ingested: int
    files_quarantined: int
    clips: int
    manifest: Path
    quarantine: Path | None


def _clip_id(video_uri: str, start: float) -> str:
    return "c" + hashlib.sha1(f"{video_uri}@{start:.3f}".encode()).hexdigest()[:12]


def _utc(ts):
    import pandas as pd

    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _read_table(path: Path):
    import pandas as pd

    if path.suffix.lower() == ".csv":
        return pd.read_csv(path, keep_default_na=False)
    return pd.read_parquet(path)


def ingest_videos(
    root: Path,
    cfg: Config,
    videos_dir: str = "videos",
    metadata: Path | None = None,
    source: str = "upload",
    split: str = "traffic",
    out: Path | None = None,
    progress: bool = True,
) -> IngestResult:
    """Write ``root/manifests/clips.parquet`` (or ``out``) for every video under ``root/videos_dir``."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    from rich.progress import track

    root = Path(root).resolve()
    base = (root / videos_dir).resolve()
    if not base.is_dir():
        raise FileNotFoundError(f"no video folder {base}")
    # every entry with a video suffix counts, not only regular files: a broken symlink, a FIFO or a
    # link out of the root is quarantined with its reason instead of silently skipped
    files = sorted(p for p in base.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and not p.is_dir())
    meta: dict[str, dict] = {}
    if metadata is not None:
        table = _read_table(Path(metadata))
        if "video_uri" not in table.columns:
            raise ValueError(f"{metadata}: metadata needs a video_uri column")
        meta = {str(r["video_uri"]): r for r in table.to_dict("records")}

    rows, bad = [], []
    for path in track(files, description="probing videos", disable=not progress):
        uri = path.relative_to(root).as_posix()
        try:  # the same checks as validation: path confined to the root, size, probe, duration bounds
            info = inspect_media(root, uri, cfg.validation, cfg.media.decode_timeout_s)
        except MediaError as e:
            bad.append({"video_uri": uri, "reason": e.reason, "message": str(e)})
            continue
        m = meta.get(uri, {})
        ts = m.get("event_timestamp") or datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
        windows = plan_windows(
            info.duration_s, cfg.media.clip_seconds, cfg.media.clip_overlap_seconds, cfg.media.min_clip_seconds
        )
        for start, end in windows:
            labels = m.get("labels", [])
            if isinstance(labels, str):
                labels = [x for x in labels.replace(",", "|").split("|") if x]
            rows.append(
                {
                    "clip_id": _clip_id(uri, start),
                    "video_uri": uri,
                    "start_s": float(start),
                    "end_s": float(end),
                    "title": str(m.get("title", "")),
                    "ocr": str(m.get("ocr", "")),
                    "asr": str(m.get("asr", "")),
                    "labels": list(labels),
                    "event_timestamp": _utc(ts),
                    "source": str(m.get("source", source)),
                    "split": str(m.get("split", split)),
                }
            )
    out = Path(out) if out else root / CLIPS_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame(rows, columns=column_names(CLIP_COLUMNS))
    pq.write_table(pa.Table.from_pandas(df, schema=arrow_schema(CLIP_COLUMNS), preserve_index=False), out)
    qpath = None
    if bad:
        qpath = out.parent / "ingest_quarantine.parquet"
        pd.DataFrame(bad).to_parquet(qpath, index=False)
    result = IngestResult(len(files), len(files) - len(bad), len(bad), len(rows), out, qpath)
    assert result.files_in == result.files_ingested + result.files_quarantined
    return result
