"""Days of a data root: which days it holds, and a data root of some of them.

A corpus spans days (``event_timestamp`` of its clips, UTC); the drift watch looks at one
day of traffic at a time and retraining runs on the days seen so far. :func:`slice_days`
writes such a data root: the clips published on the chosen days, the pairs whose two clips
are both among them, and their media, hard-linked (copied only across filesystems).
Days are numbered from the corpus's first day: ``corpus.json``'s ``start_date`` for a
generated corpus, else the earliest clip's date.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from clipguard.core.io import link_or_copy
from clipguard.data.schema import manifest_paths

CORPUS_JSON = "corpus.json"
SLICE_KEY = "day_slice"
"""``corpus.json`` key of a sliced root: the source root, its fingerprint and the days."""


@dataclass(frozen=True)
class DaySlice:
    """A data root holding some days of another one."""

    root: Path
    days: tuple[int, ...]
    dates: tuple[str, ...]
    clips: int
    pairs: int
    created: bool
    """False when ``root`` already held this slice (nothing was written)."""


def _meta(root: Path) -> dict:
    path = root / CORPUS_JSON
    return json.loads(path.read_text()) if path.is_file() else {}


def _clips(root: Path) -> pd.DataFrame:
    clips_path, _ = manifest_paths(root)
    if not clips_path.is_file():
        raise FileNotFoundError(f"{root} has no clip manifest ({clips_path})")
    return pd.read_parquet(clips_path)


def start_date(root: str | Path, clips: pd.DataFrame | None = None) -> dt.date:
    """Day 0 of ``root``: ``corpus.json``'s ``start_date``, else the earliest clip's (UTC) date."""
    root = Path(root)
    declared = _meta(root).get("start_date")
    if declared:
        return dt.date.fromisoformat(str(declared))
    clips = _clips(root) if clips is None else clips
    if clips.empty:
        raise ValueError(f"{root}: the clip manifest is empty")
    return pd.to_datetime(clips["event_timestamp"], utc=True).min().date()


def clip_days(root: str | Path, clips: pd.DataFrame | None = None) -> pd.Series:
    """The day number of every clip of ``root`` (aligned with ``clips``, default its manifest).

    Raises:
        ValueError: a clip has no ``event_timestamp`` (the message names it).
    """
    root = Path(root)
    clips = _clips(root) if clips is None else clips
    stamps = pd.to_datetime(clips["event_timestamp"], utc=True)
    if stamps.isna().any():
        bad = clips.loc[stamps.isna(), "clip_id"].head(5).tolist()
        raise ValueError(f"{root}: {int(stamps.isna().sum())} clips have no event_timestamp (clip_id {bad})")
    day0 = pd.Timestamp(start_date(root, clips), tz="UTC")
    return ((stamps.dt.floor("D") - day0).dt.days).astype(int)


def corpus_days(root: str | Path) -> dict[int, int]:
    """``{day number: clips}`` of ``root``, in day order."""
    return {int(d): int(n) for d, n in clip_days(root).value_counts().sort_index().items()}


def slice_days(root: str | Path, out: str | Path, days: Iterable[int]) -> DaySlice:
    """Write the data root ``out`` holding only ``days`` of ``root`` (see the module docstring).

    Idempotent: an ``out`` that already holds this slice of this root is returned as is; any
    other existing ``out`` is refused. ``corpus.json`` is copied (the edit vocabulary and
    policies stay known) with a ``day_slice`` entry naming the source and the days.

    Raises:
        FileNotFoundError: ``root`` has no manifests, or a clip's media file is missing.
        ValueError: no day given, or none of ``days`` holds a clip (the message lists the days there are).
        FileExistsError: ``out`` exists and holds something else.
    """
    root, out = Path(root).absolute(), Path(out)
    wanted = tuple(sorted({int(d) for d in days}))
    if not wanted:
        raise ValueError("slice_days: no day given")
    meta = _meta(root)
    marker = {"source": str(root), "fingerprint": meta.get("fingerprint"), "days": list(wanted)}

    clips_path, pairs_path = manifest_paths(root)
    clips = pq.read_table(clips_path)
    day = clip_days(root, clips.to_pandas())
    keep = day.isin(wanted).to_numpy()
    if not keep.any():
        have = sorted(set(day.tolist()))
        raise ValueError(f"{root} has no clips on day(s) {list(wanted)} (it has days {have})")
    day0 = start_date(root)
    dates = tuple((day0 + dt.timedelta(days=d)).isoformat() for d in wanted)

    if out.exists():
        if _meta(out).get(SLICE_KEY) == marker:
            out_clips, out_pairs = manifest_paths(out)
            n_pairs = pq.read_metadata(out_pairs).num_rows if out_pairs.is_file() else 0
            return DaySlice(out, wanted, dates, pq.read_metadata(out_clips).num_rows, n_pairs, created=False)
        raise FileExistsError(f"{out} exists and is not the slice of days {list(wanted)} of {root}: choose another folder")

    sliced = clips.filter(pa.array(keep))
    ids = set(sliced.column("clip_id").to_pylist())
    pairs = pq.read_table(pairs_path) if pairs_path.is_file() else None
    if pairs is not None:
        both = [
            q in ids and c in ids
            for q, c in zip(pairs.column("query_clip_id").to_pylist(), pairs.column("candidate_clip_id").to_pylist(), strict=True)
        ]
        pairs = pairs.filter(pa.array(both, pa.bool_()))

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        for uri in sorted(set(sliced.column("video_uri").to_pylist())):
            rel = Path(uri).relative_to(root) if Path(uri).is_absolute() else Path(uri)
            if not (root / rel).is_file():
                raise FileNotFoundError(f"{root}: the media of day slice {list(wanted)} is missing: {uri}")
            link_or_copy(root / rel, tmp / rel)
        new_clips, new_pairs = manifest_paths(tmp)
        new_clips.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(sliced, new_clips)
        if pairs is not None:
            pq.write_table(pairs, new_pairs)
        (tmp / CORPUS_JSON).write_text(json.dumps({**meta, SLICE_KEY: marker}, indent=2))
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return DaySlice(out, wanted, dates, sliced.num_rows, 0 if pairs is None else pairs.num_rows, created=True)
