"""Generating the corpus on disk: render videos in parallel, write manifests and corpus.json.

Layout of ``out``::

    videos/<video_id>.mp4           v…: short uploads (one clip row each); s…: livestreams
    manifests/clips.parquet         contract columns (clipguard.data.schema) + extras
    manifests/pairs.parquet
    corpus.json                     seed, config fingerprint, taxonomy, edit families, counts

The run is deterministic (same seed and config ⇒ byte-identical manifests and identical
videos: x264 and AAC are deterministic for identical input), idempotent (a finished
corpus with the same fingerprint is returned as is) and resumable (an interrupted run
re-renders only the missing videos; ``write_video`` writes atomically). ``corpus.json`` is
written last and marks a finished corpus.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console

from clipguard.config import Config
from clipguard.data.schema import CLIP_COLUMNS, CLIPS_FILE, PAIR_COLUMNS, PAIRS_FILE, SPLITS, arrow_schema
from clipguard.synth import edits as E
from clipguard.synth import policies as P
from clipguard.synth import sources
from clipguard.synth.plan import GENERATOR_VERSION, CorpusPlan, effective_synth, plan_corpus
from clipguard.synth.render import render_to_file
from clipguard.synth.specs import VideoSpec
from clipguard.synth.text import TREND_HASHTAG

CORPUS_JSON = "corpus.json"
VIDEO_DIR = "videos"
_IN_PROGRESS = ".synth-in-progress"

CLIP_EXTRA = pa.schema(
    [
        pa.field("template_id", pa.string(), nullable=False),
        pa.field("day", pa.int64(), nullable=False),
        pa.field("source_media", pa.string(), nullable=False),
        pa.field("has_audio", pa.bool_(), nullable=False),
        pa.field("trend", pa.bool_(), nullable=False),
        pa.field("evidence", pa.string(), nullable=False),
    ]
)
"""Extra clip columns: the template, day index, real media name (or ``procedural``), whether
the file has an audio track, whether the clip shows the trend (pattern or edit style),
and the comma-separated evidence tags it contains."""

PAIR_EXTRA = pa.schema(
    [
        pa.field("edit_types", pa.string(), nullable=False),
        pa.field("heldout_edit", pa.bool_(), nullable=False),
        pa.field("heldout_source", pa.bool_(), nullable=False),
        pa.field("hard_negative", pa.bool_(), nullable=False),
        pa.field("trend_edit", pa.bool_(), nullable=False),
    ]
)
"""Extra pair columns: the edit ops that made the candidate (comma-separated, in order;
empty for non-copies), whether one is a held-out edit type / either clip uses held-out
source media / the negative is a hard one (same template) / the copy uses the trend edit."""


@dataclass(frozen=True)
class CorpusSummary:
    """What :func:`generate_corpus` produced (or found already there)."""

    out: Path
    seed: int
    fingerprint: str
    clips: int
    videos: int
    pairs: int
    positives: int
    clips_by_split: dict[str, int]
    pairs_by_split: dict[str, int]
    positives_by_reason: dict[str, int]
    violations_by_policy: dict[str, int]
    rendered: int
    """videos rendered by this call (0 when the corpus was already complete)"""
    seconds: float
    """wall time of this call"""
    generation_seconds: float
    """wall time of the run that finished the corpus"""
    counts: dict = field(default_factory=dict, repr=False)

    @property
    def clips_path(self) -> Path:
        return self.out / CLIPS_FILE

    @property
    def pairs_path(self) -> Path:
        return self.out / PAIRS_FILE

    @property
    def corpus_json(self) -> Path:
        return self.out / CORPUS_JSON


def fingerprint(seed: int, cfg: Config, clips: int | None = None, days: int | None = None) -> str:
    """Hash of everything that determines the corpus content."""
    synth = effective_synth(cfg.synth, clips, days).model_dump()
    synth.pop("workers")  # parallelism does not change the output
    payload = {
        "generator": GENERATOR_VERSION,
        "seed": seed,
        "synth": synth,
        "policies": list(cfg.policy.policies),
        "sample_rate": cfg.media.sample_rate,
        "windows": [cfg.media.clip_seconds, cfg.media.clip_overlap_seconds, cfg.media.min_clip_seconds],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


# -- manifests -------------------------------------------------------------------------------


def _table(columns: dict[str, list], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_arrays([pa.array(columns[f.name], type=f.type) for f in schema], schema=schema)


def clips_table(plan: CorpusPlan) -> pa.Table:
    schema = pa.schema(list(arrow_schema(CLIP_COLUMNS)) + list(CLIP_EXTRA))
    cols: dict[str, list] = {f.name: [] for f in schema}
    for c in plan.clips:
        row = {
            "clip_id": c.clip_id,
            "video_uri": f"{VIDEO_DIR}/{c.video.video_id}.mp4",
            "start_s": float(c.start_s),
            "end_s": float(c.end_s),
            "title": c.title,
            "ocr": c.ocr,
            "asr": c.asr,
            "labels": P.labels_for(c.tags, plan.policies),
            "event_timestamp": c.ts_us,
            "source": c.source,
            "split": c.split,
            "template_id": c.template.template_id,
            "day": c.day,
            "source_media": sources.media_name(c.template.source),
            "has_audio": c.video.has_audio,
            "trend": c.trend,
            "evidence": ",".join(sorted(c.tags)),
        }
        for k, v in row.items():
            cols[k].append(v)
    return _table(cols, schema)


def pairs_table(plan: CorpusPlan) -> pa.Table:
    schema = pa.schema(list(arrow_schema(PAIR_COLUMNS)) + list(PAIR_EXTRA))
    cols: dict[str, list] = {f.name: [] for f in schema}
    for p in plan.pairs:
        row = {
            "pair_id": p.pair_id,
            "query_clip_id": p.query.clip_id,
            "candidate_clip_id": p.candidate.clip_id,
            "label": p.label,
            "reason": p.reason,
            "event_timestamp": p.ts_us,
            "split": p.query.split,
            "edit_types": ",".join(p.edit_types),
            "heldout_edit": p.heldout_edit,
            "heldout_source": p.heldout_source,
            "hard_negative": p.hard_negative,
            "trend_edit": p.trend_edit,
        }
        for k, v in row.items():
            cols[k].append(v)
    return _table(cols, schema)


def _write_parquet(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


def _counts(plan: CorpusPlan) -> dict:
    labels = [P.labels_for(c.tags, plan.policies) for c in plan.clips]
    by_split = Counter(c.split for c in plan.clips)
    pos = [p for p in plan.pairs if p.label == 1]
    return {
        "clips": len(plan.clips),
        "videos": len(plan.videos),
        "templates": len(plan.templates),
        "pairs": len(plan.pairs),
        "positives": len(pos),
        "clips_by_split": {s: by_split.get(s, 0) for s in SPLITS},
        "clips_by_source": dict(sorted(Counter(c.source for c in plan.clips).items())),
        "templates_by_split": dict(sorted(Counter(t.split for t in plan.templates).items())),
        "violations_by_policy": {p: sum(p in ls for ls in labels) for p in plan.policies},
        "violating_clips": sum(bool(ls) for ls in labels),
        "violating_clips_by_split": {
            s: sum(bool(ls) for c, ls in zip(plan.clips, labels, strict=True) if c.split == s) for s in SPLITS
        },
        "trend_clips": sum(c.trend for c in plan.clips),
        "no_audio_clips": sum(not c.video.has_audio for c in plan.clips),
        "pairs_by_split": {s: sum(p.query.split == s for p in plan.pairs) for s in SPLITS},
        "positives_by_split": {s: sum(p.query.split == s for p in pos) for s in SPLITS},
        "positives_by_reason": {r: sum(p.reason == r for p in pos) for r in ("visual", "audio", "text")},
        "hard_negatives": sum(p.hard_negative for p in plan.pairs),
        "heldout_edit_pairs": sum(p.heldout_edit for p in plan.pairs),
        "heldout_source_pairs": sum(p.heldout_source for p in plan.pairs),
        "trend_edit_pairs": sum(p.trend_edit for p in plan.pairs),
        "edit_types": dict(sorted(Counter(e for p in pos for e in p.edit_types).items())),
    }


def _metadata(plan: CorpusPlan, seed: int, fp: str, seconds: float) -> dict:
    s = plan.synth
    return {
        "generator": "clipguard.synth",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "fingerprint": fp,
        "start_date": s.start_date,
        "days": s.days,
        "trend_day": s.trend_day,
        "policies": list(plan.policies),
        "evidence": {
            "violations": {p: sorted(pat.tags) for p, pat in P.VIOLATIONS.items()},
            "lookalikes": {pat.name: sorted(pat.tags) for pat in P.LOOKALIKES},
            "trend": {"policy": P.TREND.policy, "tags": sorted(P.TREND.tags), "hashtag": TREND_HASHTAG},
        },
        "edit_types": {
            "train": list(E.TRAIN_EDITS),
            "heldout": list(E.HELDOUT_EDITS),
            "trend": list(E.TREND_EDITS),
            "audio": list(E.AUDIO_EDITS),
        },
        "heldout_sources": list(plan.heldout_sources),
        "video": {"width": s.width, "height": s.height, "fps": s.video_fps, "sample_rate": plan.sample_rate},
        "synth": s.model_dump(),
        "counts": _counts(plan),
        "generation_seconds": round(seconds, 2),
    }


def _summary(out: Path, meta: dict, rendered: int, seconds: float) -> CorpusSummary:
    c = meta["counts"]
    return CorpusSummary(
        out=out,
        seed=meta["seed"],
        fingerprint=meta["fingerprint"],
        clips=c["clips"],
        videos=c["videos"],
        pairs=c["pairs"],
        positives=c["positives"],
        clips_by_split=c["clips_by_split"],
        pairs_by_split=c["pairs_by_split"],
        positives_by_reason=c["positives_by_reason"],
        violations_by_policy=c["violations_by_policy"],
        rendered=rendered,
        seconds=seconds,
        generation_seconds=meta["generation_seconds"],
        counts=c,
    )


# -- rendering -------------------------------------------------------------------------------


def _render_job(job: tuple[VideoSpec, str]) -> str:
    spec, path = job
    try:
        render_to_file(spec, Path(path))
    except Exception as e:  # name the video; the pool would otherwise report a bare traceback
        raise RuntimeError(f"rendering {spec.video_id} -> {path} failed: {type(e).__name__}: {e}") from e
    return spec.video_id


def _render_all(jobs: list[tuple[VideoSpec, str]], workers: int, progress: bool) -> None:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    # longest first, so the livestreams do not finish last on one worker
    jobs = sorted(jobs, key=lambda j: -j[0].duration)
    columns = (
        TextColumn("[bold]synth[/] rendering videos"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, disable=not progress) as bar:
        task = bar.add_task("render", total=len(jobs))
        if workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                _render_job(job)
                bar.advance(task)
            return
        # spawn: workers must not inherit the parent's decoder threads (fork + threads); a
        # worker that dies makes the executor raise BrokenProcessPool instead of hanging
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx) as pool:
            futures = [pool.submit(_render_job, job) for job in jobs]
            try:
                for fut in as_completed(futures):
                    fut.result()
                    bar.advance(task)
            except BaseException:
                for f in futures:
                    f.cancel()
                raise


# -- entry point -----------------------------------------------------------------------------


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e}); delete it to regenerate the corpus") from e


def _complete(out: Path, meta: dict) -> bool:
    """Both manifests exist and every video they reference is on disk."""
    if not ((out / CLIPS_FILE).is_file() and (out / PAIRS_FILE).is_file()):
        return False
    uris = set(pq.read_table(out / CLIPS_FILE, columns=["video_uri"]).column(0).to_pylist())
    return len(uris) == meta["counts"]["videos"] and all((out / u).is_file() for u in uris)


def generate_corpus(
    out: Path | str,
    seed: int,
    cfg: Config,
    clips: int | None = None,
    days: int | None = None,
    progress: bool = True,
) -> CorpusSummary:
    """Generate the synthetic multimodal moderation corpus into ``out``.

    ``clips`` / ``days`` override ``cfg.synth.clips`` / ``cfg.synth.days``. Rendering uses
    ``cfg.synth.workers`` processes and shows a rich progress bar unless ``progress`` is
    False. Returns immediately when ``out`` already holds this corpus; re-renders only
    missing videos after an interrupted run; refuses to write into a directory that holds a
    corpus of another seed/config.

    With ``workers > 1`` videos are rendered in *spawned* processes, so a script that calls
    this must guard its entry point with ``if __name__ == "__main__":``.
    """
    t0 = time.perf_counter()
    out = Path(out)
    fp = fingerprint(seed, cfg, clips, days)
    meta_path, marker = out / CORPUS_JSON, out / _IN_PROGRESS
    meta = _read_json(meta_path)
    for what, found in (("corpus", meta), ("partial corpus", _read_json(marker))):
        if found is not None and found.get("fingerprint") != fp:
            raise FileExistsError(
                f"{out} holds a {what} generated with another seed/config "
                f"(fingerprint {found.get('fingerprint')}, seed {found.get('seed')}; "
                f"wanted {fp}, seed {seed}): "
                "delete it or choose another directory"
            )

    synth = effective_synth(cfg.synth, clips, days)
    if meta is not None and _complete(out, meta):
        return _summary(out, meta, 0, time.perf_counter() - t0)

    out.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"fingerprint": fp, "seed": seed}))
    with Console(quiet=not progress).status("[bold]synth[/] planning the corpus"):
        plan = plan_corpus(seed, synth, cfg.media, cfg.policy.policies, sample_rate=cfg.media.sample_rate)
    jobs = [
        (spec, str(out / VIDEO_DIR / f"{spec.video_id}.mp4"))
        for spec in plan.video_specs()
        if not (out / VIDEO_DIR / f"{spec.video_id}.mp4").is_file()
    ]
    _render_all(jobs, synth.workers, progress)
    _write_parquet(clips_table(plan), out / CLIPS_FILE)
    _write_parquet(pairs_table(plan), out / PAIRS_FILE)
    seconds = time.perf_counter() - t0
    meta = _metadata(plan, seed, fp, seconds)
    tmp = meta_path.with_name(CORPUS_JSON + ".part")
    tmp.write_text(json.dumps(meta, indent=2) + "\n")
    os.replace(tmp, meta_path)
    marker.unlink(missing_ok=True)
    return _summary(out, meta, len(jobs), seconds)
