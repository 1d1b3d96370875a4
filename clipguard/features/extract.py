"""Frozen-encoder feature extraction for every accepted clip of a data root.

:func:`extract_features` decodes each clip of ``<root>/validated/clips.parquet`` (at
``cfg.media``'s fps, sample rate and frame size; the next batch decodes in a background
thread), runs the pretrained encoders of ``encoder_dir`` under ``torch.inference_mode``
in batches of ``cfg.features.batch_size`` clips, and writes the layout of
:mod:`clipguard.features.store_format` under ``<out_dir>/<encoder_version>/``.

* Resumable and idempotent: every ``cfg.features.shard_clips`` clips an array shard and
  its Parquet rows are published atomically (shard first, rows second: rows commit it);
  a rerun skips clips already extracted with this encoder version and never reads a
  half-written shard. The final ``clip_features.parquet`` merges all rows.
* A clip that does not decode goes to ``features_quarantine.parquet`` (reason code +
  message) and the batch goes on; it is retried only once its media file changes.
  ``n_in == n_extracted + n_skipped + n_quarantined``.
* Sharded: ``shard=(i, n)`` extracts only the clips :func:`shard_of` assigns to
  shard ``i`` (a stable hash of the clip id, so a clip keeps its shard when the data root
  grows), each shard into its own folder (resumable like any run; a folder holds one shard);
  :func:`merge_feature_shards` joins the ``n`` shard folders into one feature version, the
  same layout a single run writes, after checking that they are the same encoder and
  settings, every shard once, no clip twice and, given the root, every accepted clip once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from clipguard.config import Config
from clipguard.core.io import atomic_write, link_or_copy, remove_stale_tmp, save_tensors, write_json
from clipguard.data.schema import data_version, resolve_media
from clipguard.encoders.bundle import EncoderBundle
from clipguard.encoders.inputs import ClipInput, decode_batches, read_accepted
from clipguard.encoders.runtime import configure_threads
from clipguard.features.store_format import (
    ARRAYS_DIR,
    CLIP_FEATURES_SCHEMA,
    FEATURES_FILE,
    MANIFEST_FILE,
    PARTS_DIR,
    QUARANTINE_FILE,
    QUARANTINE_SCHEMA,
    array_key,
    resolve_features_dir,
    shard_name,
)
from clipguard.media.reader import MediaError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExtractResult:
    """Counts, timings and location of one extraction run."""

    features_dir: Path
    encoder_version: str
    data_version: str
    n_in: int
    n_extracted: int
    n_skipped: int
    """already extracted with this encoder version"""
    n_quarantined: int
    """could not be decoded (this run, or before with unchanged media)"""
    seconds: float
    """wall time of the whole call"""
    load_seconds: float
    """of which loading the manifest and the encoders"""
    decode_seconds: float
    """summed per-clip decode time (overlaps encoding: it runs in a background thread)"""
    encode_seconds: float
    shards_written: list[str] = field(default_factory=list)

    @property
    def clips_per_second(self) -> float:
        """Extracted clips per second of extraction work (wall time after loading)."""
        work = self.seconds - self.load_seconds
        return self.n_extracted / work if work > 0 and self.n_extracted else 0.0

    def counts(self) -> dict[str, Any]:
        d = asdict(self)
        d["features_dir"] = str(self.features_dir)
        d["clips_per_second"] = self.clips_per_second
        return d


def _settings(cfg: Config, bundle_meta: dict[str, Any], shard: tuple[int, int] | None = None) -> dict[str, Any]:
    """Everything besides the encoder weights that changes the extracted values (and, for a
    shard, which clips: one folder holds one shard)."""
    settings: dict[str, Any] = {
        "encoder_version": bundle_meta["version"],
        "media": cfg.media.model_dump(mode="json", include={"fps", "sample_rate", "frame_size", "clip_seconds"}),
        "text_max_tokens": cfg.features.text_max_tokens,
        "audio_tokens_per_second": cfg.features.audio_tokens_per_second,
    }
    if shard is not None:
        settings["shard"] = {"index": shard[0], "of": shard[1]}
    return settings


def shard_of(clip_id: str, num_shards: int) -> int:
    """The shard (``0 .. num_shards-1``) a clip is extracted in: a stable hash of its id, so it
    does not change with the data root's other clips or between processes."""
    digest = hashlib.blake2b(clip_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % num_shards


def _settings_diff(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The settings keys whose values differ between ``a`` and ``b`` (either side may lack one)."""
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def _check_settings(features_dir: Path, settings: dict[str, Any]) -> None:
    """Refuse to mix settings in one directory; record them before the first clip is written."""
    path = features_dir / MANIFEST_FILE
    if not path.is_file():
        write_json(path, {"encoder_version": settings["encoder_version"], "settings": settings})
        return
    stored = json.loads(path.read_text()).get("settings") or {}
    if stored != settings:
        diff = _settings_diff(stored, settings)
        raise ValueError(
            f"{features_dir} was extracted with other settings ({', '.join(diff)} differ): use another out_dir or remove it"
        )


def _file_stat(root: Path, uri: str) -> tuple[int | None, int | None]:
    try:
        st = resolve_media(root, uri).stat()
    except (MediaError, OSError):
        return None, None
    return int(st.st_size), int(st.st_mtime_ns)


class _ShardWriter:
    """Buffers encoded clips and publishes them as (array shard, Parquet rows) pairs."""

    def __init__(self, features_dir: Path, shard_clips: int, next_index: int) -> None:
        self.dir = features_dir
        self.shard_clips = shard_clips
        self.index = next_index
        self.arrays: dict[str, torch.Tensor] = {}
        self.rows: list[dict[str, Any]] = []
        self.written: list[str] = []

    def add(self, row: dict[str, Any], arrays: dict[str, torch.Tensor]) -> None:
        self.rows.append(row)
        self.arrays.update(arrays)
        if len(self.rows) >= self.shard_clips:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        name = shard_name(self.index)
        save_tensors(self.dir / name, self.arrays, metadata={"format": "clipguard-features/1"})
        now = pd.Timestamp.now(tz="UTC")
        for r in self.rows:
            r["array_file"] = name
            r["created_timestamp"] = now
        table = pa.Table.from_pylist(self.rows, schema=CLIP_FEATURES_SCHEMA)
        atomic_write(self.dir / PARTS_DIR / f"shard-{self.index:05d}.parquet", lambda p: pq.write_table(table, p))
        self.written.append(name)
        self.index += 1
        self.arrays, self.rows = {}, []


def _read_table(path: Path, schema: pa.Schema) -> pa.Table:
    return pq.read_table(path, schema=schema) if path.is_file() else schema.empty_table()


def _committed(features_dir: Path) -> tuple[pa.Table, list[Path]]:
    """Rows already published (merged file + per-shard parts) and the part files."""
    parts = sorted((features_dir / PARTS_DIR).glob("shard-*.parquet"))
    tables = [_read_table(features_dir / FEATURES_FILE, CLIP_FEATURES_SCHEMA)]
    tables += [pq.read_table(p, schema=CLIP_FEATURES_SCHEMA) for p in parts]
    return pa.concat_tables(tables), parts


def _remove_orphan_shards(features_dir: Path, referenced: set[str]) -> int:
    """Delete array shards no committed row points at (a crash between shard and rows)."""
    n = 0
    for p in (features_dir / ARRAYS_DIR).glob("shard-*.safetensors"):
        if f"{ARRAYS_DIR}/{p.name}" not in referenced:
            p.unlink()
            n += 1
    return n


def _merge(features_dir: Path, committed: pa.Table, parts: list[Path]) -> int:
    """Write the merged ``clip_features.parquet`` (one row per clip) and drop the parts."""
    df = committed.to_pandas()
    df = df.drop_duplicates("clip_id", keep="first").sort_values("clip_id").reset_index(drop=True)
    table = pa.Table.from_pandas(df, schema=CLIP_FEATURES_SCHEMA, preserve_index=False)
    atomic_write(features_dir / FEATURES_FILE, lambda p: pq.write_table(table, p))
    for p in parts:
        p.unlink(missing_ok=True)
    return len(df)


def _encode(bundle: EncoderBundle, items: list[ClipInput]) -> list[tuple[dict[str, Any], dict[str, torch.Tensor]]]:
    """Run the three encoders on the decoded clips of a batch; one (row, arrays) per clip."""
    clips = [it.clip for it in items if it.clip is not None]
    if len(clips) != len(items):
        raise ValueError("_encode takes decoded clips only")
    vis_tokens, vis_pooled, emb = bundle.vision.encode_clips([c.frames for c in clips])
    audio = bundle.audio.encode_clips([c.audio for c in clips], [c.has_audio for c in clips])
    text = bundle.text.encode([it.text for it in items])
    out = []
    for i, it in enumerate(items):
        arrays = {
            array_key(it.clip_id, "visual"): vis_tokens[i].half(),
            array_key(it.clip_id, "audio"): audio[i].tokens.half(),
            array_key(it.clip_id, "text"): text.tokens[i].half(),
        }
        row = {
            "clip_id": it.clip_id,
            "visual_pooled": vis_pooled[i].float().numpy(),
            "audio_pooled": audio[i].pooled.float().numpy(),
            "text_pooled": text.pooled[i].float().numpy(),
            "clip_embedding": emb[i].float().numpy(),
            "n_frames": int(vis_tokens[i].shape[0]),
            "n_audio_tokens": int(audio[i].tokens.shape[0]),
            "n_text_tokens": int(text.tokens[i].shape[0]),
            "has_audio": bool(audio[i].tokens.shape[0] > 0),
        }
        out.append((row, arrays))
    return out


def extract_features(
    root: str | Path,
    cfg: Config,
    encoder_dir: str | Path,
    out_dir: str | Path,
    progress: bool = True,
    *,
    shard: tuple[int, int] | None = None,
) -> ExtractResult:
    """Extract visual/audio/text tokens, pooled vectors and clip embeddings for ``root``.

    ``encoder_dir`` is a pretrained encoder directory
    (:attr:`clipguard.encoders.pretrain.PretrainResult.encoder_dir`); features land in
    ``<out_dir>/<encoder_version>/``. ``shard=(i, n)`` extracts only the clips of shard ``i`` of
    ``n`` (:func:`shard_of`), for :func:`merge_feature_shards`. See the module docstring for
    resume, quarantine and shards.
    """
    if shard is not None and (shard[1] < 1 or not 0 <= shard[0] < shard[1]):
        raise ValueError(f"shard {shard[0]} of {shard[1]}: need at least 1 shard and 0 <= shard < shards")
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    t_start = time.perf_counter()
    configure_threads(cfg.features.torch_threads)
    root = Path(root).resolve()
    clips = read_accepted(root).sort_values("clip_id").reset_index(drop=True)
    if shard is not None:
        clips = clips[[shard_of(c, shard[1]) == shard[0] for c in clips["clip_id"]]].reset_index(drop=True)
    data_ver = data_version(root)
    bundle, meta = EncoderBundle.load(encoder_dir, cfg)
    if bundle.audio.sample_rate != cfg.media.sample_rate:
        raise ValueError(
            f"{encoder_dir} encodes audio at {bundle.audio.sample_rate} Hz but media.sample_rate={cfg.media.sample_rate}"
        )
    load_s = time.perf_counter() - t_start
    version = meta["version"]
    features_dir = Path(out_dir) / version
    settings = _settings(cfg, meta, shard)
    _check_settings(features_dir, settings)
    for sub in (features_dir, features_dir / ARRAYS_DIR, features_dir / PARTS_DIR):
        remove_stale_tmp(sub)

    committed, parts = _committed(features_dir)
    done = set(committed.column("clip_id").to_pylist())
    orphans = _remove_orphan_shards(features_dir, set(committed.column("array_file").to_pylist()))
    if orphans:
        log.warning("%s: removed %d array shard(s) left by an interrupted run", features_dir, orphans)
    quarantine = _read_table(features_dir / QUARANTINE_FILE, QUARANTINE_SCHEMA).to_pylist()
    stat = {uri: _file_stat(root, uri) for uri in clips["video_uri"].unique()}
    unchanged_bad = {
        q["clip_id"]
        for q in quarantine
        if q["clip_id"] not in done and (q["file_size"], q["file_mtime_ns"]) == stat.get(q["video_uri"], (None, None))
    }
    in_ids = set(clips["clip_id"])
    todo = clips[~clips["clip_id"].isin(done | unchanged_bad)]
    n_skipped = len(in_ids & done)
    n_prev_bad = len(in_ids & unchanged_bad)

    info = clips.set_index("clip_id")[["video_uri", "event_timestamp"]].to_dict("index")
    existing = sorted((features_dir / ARRAYS_DIR).glob("shard-*.safetensors"))
    next_index = 1 + max((int(p.stem.split("-")[1]) for p in existing), default=-1)
    writer = _ShardWriter(features_dir, cfg.features.shard_clips, next_index)
    new_bad: list[dict[str, Any]] = []
    decode_s = encode_s = 0.0
    n_new = 0
    console = Console(stderr=True)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:.1f} clips/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    t_work = time.perf_counter()
    with Progress(*columns, console=console, disable=not progress or todo.empty) as bar:
        label = f"features {version}" + (f" shard {shard[0] + 1}/{shard[1]}" if shard else "")
        task = bar.add_task(label, total=len(todo), rate=0.0)
        for items in decode_batches(root, todo, cfg.media, cfg.features.batch_size, cfg.features.prefetch):
            decode_s += sum(it.decode_seconds for it in items)
            ok = [it for it in items if it.clip is not None]
            for it in items:
                if it.error is not None:
                    size, mtime = stat.get(info[it.clip_id]["video_uri"], (None, None))
                    new_bad.append(
                        {
                            "clip_id": it.clip_id,
                            "video_uri": info[it.clip_id]["video_uri"],
                            "reason": it.error.reason,
                            "message": str(it.error),
                            "file_size": size,
                            "file_mtime_ns": mtime,
                            "encoder_version": version,
                            "created_timestamp": pd.Timestamp.now(tz="UTC"),
                        }
                    )
                    log.warning("quarantined %s: %s", it.clip_id, it.error)
            if ok:
                t0 = time.perf_counter()
                with torch.inference_mode():
                    encoded = _encode(bundle, ok)
                encode_s += time.perf_counter() - t0
                for row, arrays in encoded:
                    row.update(
                        video_uri=info[row["clip_id"]]["video_uri"],
                        event_timestamp=info[row["clip_id"]]["event_timestamp"],
                        encoder_version=version,
                        data_version=data_ver,
                    )
                    writer.add(row, arrays)
                n_new += len(ok)
            elapsed = time.perf_counter() - t_work
            bar.update(task, advance=len(items), rate=n_new / elapsed if elapsed > 0 else 0.0)
    writer.flush()

    if writer.written or parts:
        committed, parts = _committed(features_dir)
        _merge(features_dir, committed, parts)
    extracted_now = {
        r["clip_id"] for r in _read_table(features_dir / FEATURES_FILE, CLIP_FEATURES_SCHEMA).select(["clip_id"]).to_pylist()
    }
    kept = [q for q in quarantine if q["clip_id"] in unchanged_bad and q["clip_id"] not in extracted_now]
    new_quarantine = kept + new_bad
    if new_bad or len(kept) != len(quarantine):
        table = pa.Table.from_pylist(new_quarantine, schema=QUARANTINE_SCHEMA)
        atomic_write(features_dir / QUARANTINE_FILE, lambda p: pq.write_table(table, p))

    seconds = time.perf_counter() - t_start
    result = ExtractResult(
        features_dir=features_dir,
        encoder_version=version,
        data_version=data_ver,
        n_in=len(clips),
        n_extracted=n_new,
        n_skipped=n_skipped,
        n_quarantined=len(new_bad) + n_prev_bad,
        seconds=seconds,
        load_seconds=load_s,
        decode_seconds=decode_s,
        encode_seconds=encode_s,
        shards_written=writer.written,
    )
    changed = bool(n_new or new_bad) or len(kept) != len(quarantine)
    if changed or "last_run" not in json.loads((features_dir / MANIFEST_FILE).read_text()):
        write_json(
            features_dir / MANIFEST_FILE,
            {
                "encoder_version": version,
                "encoder_dir": str(Path(encoder_dir).resolve()),
                "encoder_mode": meta.get("mode"),
                "settings": settings,
                "last_run": {**result.counts(), "data_version": data_ver, "finished_at": pd.Timestamp.now(tz="UTC").isoformat()},
                "clips": int(len(extracted_now)),
                "quarantined": len(new_quarantine),
            },
        )
    rate = f"{result.clips_per_second:.2f} clips/s" if n_new else "nothing to extract"
    summary = (
        f"features {version}: {result.n_in} in = {n_new} extracted + {n_skipped} skipped (already extracted) "
        f"+ {result.n_quarantined} quarantined ({n_prev_bad} unchanged since an earlier run); "
        f"{seconds:.1f} s ({load_s:.1f} s loading), {rate}; decode {decode_s:.1f} s, encode {encode_s:.1f} s"
    )
    if progress:
        console.print(summary)
    log.info(summary)
    return result


@dataclass(frozen=True)
class MergeResult:
    """One feature version joined from the folders of :func:`extract_features`' shards."""

    features_dir: Path
    encoder_version: str
    data_version: str
    n_shards: int
    n_in: int
    """clips the shards were given (the data root's accepted clips)"""
    n_clips: int
    """rows of the merged ``clip_features.parquet``"""
    n_quarantined: int
    seconds: float
    shard_seconds: list[float] = field(default_factory=list)
    """each shard's own wall time (they ran in parallel)"""

    def counts(self) -> dict[str, Any]:
        d = asdict(self)
        d["features_dir"] = str(self.features_dir)
        return d


def _shard_manifest(shard_dir: Path) -> tuple[Path, dict[str, Any]]:
    """A shard's version folder (``shard_dir`` or its one version sub-folder) and its manifest."""
    try:
        version_dir = resolve_features_dir(shard_dir)
    except (FileNotFoundError, ValueError) as exc:
        raise ValueError(f"feature shard {shard_dir}: {exc}") from exc
    manifest = json.loads((version_dir / MANIFEST_FILE).read_text())
    shard = manifest.get("settings", {}).get("shard")
    if not shard or "last_run" not in manifest:
        raise ValueError(f"feature shard {version_dir}: not the finished output of a sharded extraction (no shard / last_run)")
    return version_dir, manifest


def merge_feature_shards(shard_dirs: Sequence[str | Path], out_dir: str | Path, root: str | Path | None = None) -> MergeResult:
    """Join the folders written by ``extract_features(..., shard=(i, n))`` for
    ``i = 0 .. n-1`` into ``<out_dir>/<encoder_version>/``, the layout one unsharded run writes.

    Refuses (``ValueError`` naming the shard) folders of other encoders, settings or data
    versions, a shard missing or given twice, and a clip in two shards; with ``root``, also a
    merged result that does not account for every accepted clip of ``root`` exactly once
    (extracted or quarantined). Array files are hard-linked (copied across filesystems) and
    renumbered; the result is built in a temporary sibling and renamed into place, so a rerun
    replaces it whole and a reader never sees half of it.
    """
    t0 = time.perf_counter()
    if not shard_dirs:
        raise ValueError("no feature shards to merge")
    shards = [_shard_manifest(Path(d)) for d in shard_dirs]
    shards.sort(key=lambda s: s[1]["settings"]["shard"]["index"])
    first_dir, first = shards[0]
    n = first["settings"]["shard"]["of"]
    base_settings = {k: v for k, v in first["settings"].items() if k != "shard"}
    data_ver = first["last_run"]["data_version"]
    for version_dir, manifest in shards:
        settings = {k: v for k, v in manifest["settings"].items() if k != "shard"}
        if settings != base_settings:
            diff = _settings_diff(settings, base_settings)
            raise ValueError(f"feature shard {version_dir}: other settings than {first_dir} ({', '.join(diff)} differ)")
        if manifest["last_run"]["data_version"] != data_ver:
            raise ValueError(
                f"feature shard {version_dir}: data version {manifest['last_run']['data_version']}, {first_dir} has {data_ver}"
            )
    indexes = [m["settings"]["shard"]["index"] for _, m in shards]
    ofs = {m["settings"]["shard"]["of"] for _, m in shards}
    if ofs != {n} or indexes != list(range(n)):
        raise ValueError(f"feature shards {indexes} of {sorted(ofs)}: need each of shards 0..{n - 1} of {n} exactly once")

    version = first["encoder_version"]
    features_dir = Path(out_dir) / version
    tmp = features_dir.with_name(f".{version}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        (tmp / ARRAYS_DIR).mkdir(parents=True)
        tables: list[pa.Table] = []
        quarantines: list[pa.Table] = []
        owner: dict[str, Path] = {}
        next_array = 0
        for version_dir, manifest in shards:
            rows = pq.read_table(version_dir / FEATURES_FILE, schema=CLIP_FEATURES_SCHEMA)
            renamed = {}
            for name in sorted(set(rows.column("array_file").to_pylist())):
                renamed[name] = shard_name(next_array)
                link_or_copy(version_dir / name, tmp / renamed[name])
                next_array += 1
            for clip_id in rows.column("clip_id").to_pylist():
                if clip_id in owner:
                    raise ValueError(f"clip {clip_id} is in feature shards {owner[clip_id]} and {version_dir}")
                owner[clip_id] = version_dir
            files = pa.array([renamed[f] for f in rows.column("array_file").to_pylist()], pa.string())
            tables.append(rows.set_column(rows.schema.get_field_index("array_file"), "array_file", files))
            quarantines.append(_read_table(version_dir / QUARANTINE_FILE, QUARANTINE_SCHEMA))
        merged = pa.concat_tables(tables).sort_by("clip_id")
        quarantine = pa.concat_tables(quarantines).sort_by("clip_id")
        n_in = sum(int(m["last_run"]["n_in"]) for _, m in shards)
        if root is not None:
            accepted = set(read_accepted(Path(root))["clip_id"])
            seen = set(owner) | set(quarantine.column("clip_id").to_pylist())
            missing, extra = sorted(accepted - seen), sorted(seen - accepted)
            if missing or extra or len(accepted) != n_in:
                raise ValueError(
                    f"feature shards of {root} do not cover its {len(accepted)} accepted clips once: "
                    f"{len(missing)} missing (e.g. {missing[:3]}), {len(extra)} not in the root (e.g. {extra[:3]}), "
                    f"the shards were given {n_in}"
                )
        pq.write_table(merged, tmp / FEATURES_FILE)
        if quarantine.num_rows:
            pq.write_table(quarantine, tmp / QUARANTINE_FILE)
        shard_seconds = [float(m["last_run"]["seconds"]) for _, m in shards]
        result = MergeResult(
            features_dir=features_dir,
            encoder_version=version,
            data_version=data_ver,
            n_shards=n,
            n_in=n_in,
            n_clips=merged.num_rows,
            n_quarantined=quarantine.num_rows,
            seconds=time.perf_counter() - t0,
            shard_seconds=shard_seconds,
        )
        write_json(
            tmp / MANIFEST_FILE,
            {
                "encoder_version": version,
                "encoder_dir": first.get("encoder_dir"),
                "encoder_mode": first.get("encoder_mode"),
                "settings": base_settings,
                "last_run": {**result.counts(), "data_version": data_ver, "finished_at": pd.Timestamp.now(tz="UTC").isoformat()},
                "merged_from": [{"shard": i, "dir": str(d), "clips": m["clips"]} for i, (d, m) in enumerate(shards)],
                "clips": merged.num_rows,
                "quarantined": quarantine.num_rows,
            },
        )
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = features_dir.with_name(f".{version}.{os.getpid()}.old")
    if features_dir.exists():
        os.replace(features_dir, old)
    os.replace(tmp, features_dir)
    shutil.rmtree(old, ignore_errors=True)
    log.info(
        "features %s: %d shards merged: %d in = %d clips + %d quarantined (%.1f s)",
        version,
        n,
        n_in,
        result.n_clips,
        result.n_quarantined,
        result.seconds,
    )
    return result


def shard_plan(cfg: Config) -> list[int]:
    """The shard indexes the pipelines' extraction fans out over (``features.extract_shards``)."""
    return list(range(cfg.features.extract_shards))
