"""Feature-extraction throughput: decode vs encode, per 20-s clip per core.

Target (shared/TARGETS.md): a 20-s clip decoded + encoded in < 2 s per core (10x real time).

Two measurements, both in the ``local`` profile unless ``--profile`` says otherwise:

1. **One core, one 20-s clip**: torch on 1 thread, decoding in the calling thread. A 20-s
   640x360 25-fps H.264 clip with AAC audio (a typical upload, written here from real
   scikit-image photographs) is decoded (``clipguard.media.reader.decode_clip`` at the
   profile's fps / frame size / sample rate) and encoded (Swin, Whisper, MiniLM), ``--repeat``
   times; medians are reported, encode time split by encoder.
2. **The machine, corpus clips** (``--corpus ROOT``, a validated data root): the real
   :func:`clipguard.features.extract.extract_features` on up to ``--clips`` accepted clips,
   once per ``--threads`` value (torch intra-op threads; decoding is prefetched in a
   background thread): clips/s and core-seconds per 20 s of clip. On a machine shared with
   other busy processes one torch thread is often faster than two.

3. **Sharded, as the pipelines run it** (``--shards N`` with ``--corpus``): the same clips
   extracted by one task (a fresh process; torch on 1 thread and on all cores) and by ``N``
   tasks in parallel processes (``extract_features(..., shard=(i, N))``, 1 torch thread
   each) followed by :func:`clipguard.features.extract.merge_feature_shards`, alternated
   ``--repeat`` times; wall time from launch to the merged version, process start and
   encoder loading included for every task, as in a ``ParallelFor``. The speed-up is the
   faster one-task time over the sharded time, measured in the same run; the merged version
   is checked to hold the same clips as the one-task run.

Encoders are freshly initialised from the profile (same cost as trained ones) unless
``--encoder-dir`` names a pretrained directory. The machine's load average is recorded:
on a shared machine it inflates every timing. Writes ``benchmarks/results/extract.json``
and prints it. Usage::

    python benchmarks/bench_extract.py --corpus /tmp/cg_corpus
    python benchmarks/bench_extract.py --corpus /tmp/cg_corpus --clips 96 --shards 2 --out benchmarks/results/extract_shards.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from clipguard.config import load_config  # noqa: E402

TARGET_S_PER_20S_CLIP_PER_CORE = 2.0
RESULT = REPO / "benchmarks" / "results" / "extract.json"


def _upload_clip(path: Path, seconds: float = 20.0, fps: int = 25, size: tuple[int, int] = (640, 360)) -> Path:
    """A 20-s upload-like MP4: a slow pan over real photographs, scene cut every 5 s, speech-band tone."""
    from PIL import Image
    from skimage import data

    from clipguard.media.writer import write_video

    w, h = size
    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    frames = []
    n = int(seconds * fps)
    for i in range(n):
        img = photos[(i * len(photos)) // n]
        ph, pw = img.shape[:2]
        zoom = 0.7
        cw, ch = int(pw * zoom), int(ph * zoom)
        x0 = int((pw - cw) * ((i % (n // len(photos))) / (n // len(photos))))
        crop = img[(ph - ch) // 2 : (ph - ch) // 2 + ch, x0 : x0 + cw]
        frames.append(np.asarray(Image.fromarray(crop).resize((w, h), Image.BILINEAR)))
    t = np.arange(int(seconds * 16_000)) / 16_000
    audio = (0.2 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    return write_video(path, frames, fps=fps, audio=audio, sample_rate=16_000)


def _one_core(cfg, bundle, clip_path: Path, repeat: int) -> dict:
    import torch

    from clipguard.encoders.text import clip_text
    from clipguard.media.reader import decode_clip, probe

    torch.set_num_threads(1)
    duration = probe(clip_path).duration_s
    text = clip_text("my trip to the space center #rocket", "LIVE", "so today we are looking at the rocket " * 8)
    decode, vision, audio, textt = [], [], [], []
    for _ in range(repeat + 1):  # the first round warms up allocators and kernels
        t0 = time.perf_counter()
        clip = decode_clip(
            clip_path, 0.0, duration, fps=cfg.media.fps, sample_rate=cfg.media.sample_rate, size=cfg.media.frame_size
        )
        t1 = time.perf_counter()
        with torch.inference_mode():
            bundle.vision.encode_clips([clip.frames])
            t2 = time.perf_counter()
            bundle.audio.encode_clips([clip.audio], [clip.has_audio])
            t3 = time.perf_counter()
            bundle.text.encode([text])
            t4 = time.perf_counter()
        decode.append(t1 - t0)
        vision.append(t2 - t1)
        audio.append(t3 - t2)
        textt.append(t4 - t3)
    med = {k: statistics.median(v[1:]) for k, v in dict(decode=decode, vision=vision, audio=audio, text=textt).items()}
    encode = med["vision"] + med["audio"] + med["text"]
    total = med["decode"] + encode
    return {
        "clip": "synthetic upload, 640x360, 25 fps, H.264 + AAC",
        "clip_seconds": duration,
        "frames_sampled": int(len(clip.frames)),
        "threads": 1,
        "repeat": repeat,
        "decode_s": med["decode"],
        "encode_s": encode,
        "encode_split_s": {"vision": med["vision"], "audio": med["audio"], "text": med["text"]},
        "total_s": total,
        "s_per_20s_clip_per_core": total * 20.0 / duration,
        "real_time_factor": duration / total,
    }


def _sample_root(corpus: Path, n_clips: int, root: Path):
    """A scratch validated root holding the first ``n_clips`` accepted clips of ``corpus``; their rows."""
    import shutil

    import pandas as pd

    clips = pd.read_parquet(corpus / "validated" / "clips.parquet")
    sample = clips.sort_values("clip_id").head(n_clips)
    (root / "validated").mkdir(parents=True)
    for uri in sample["video_uri"].unique():  # media must lie inside the root: copy, not link
        (root / uri).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(corpus / uri, root / uri)
    sample.to_parquet(root / "validated" / "clips.parquet", index=False)
    return sample


def _corpus(cfg, encoder_dir: Path | None, corpus: Path, n_clips: int, threads: int) -> dict:
    """extract_features on the first ``n_clips`` accepted clips of ``corpus`` (copied to a scratch root)."""
    from clipguard.encoders.runtime import available_cpus
    from clipguard.features.extract import extract_features

    with tempfile.TemporaryDirectory(prefix="bench_extract_") as tmp:
        root = Path(tmp) / "root"
        sample = _sample_root(corpus, n_clips, root)
        if encoder_dir is None:
            encoder_dir = _fresh_encoder_dir(cfg, Path(tmp) / "enc")
        run_cfg = cfg.model_copy(update={"features": cfg.features.model_copy(update={"torch_threads": threads})})
        r = extract_features(root, run_cfg, encoder_dir, Path(tmp) / "features", progress=False)
    cores = available_cpus()
    seconds_of_clip = float((sample["end_s"] - sample["start_s"]).sum())
    return {
        "corpus": str(corpus),
        "clips": r.n_extracted,
        "clip_seconds_total": seconds_of_clip,
        "cores": cores,
        "torch_threads": threads,
        "wall_s": r.seconds,
        "load_s": r.load_seconds,
        "decode_s_summed": r.decode_seconds,
        "encode_s": r.encode_seconds,
        "clips_per_s": r.clips_per_second,
        "core_s_per_20s_clip": (r.seconds - r.load_seconds) * cores / seconds_of_clip * 20.0,
        "note": "clips/s and core-s exclude loading the encoders (load_s); decode runs in a background thread beside encoding",
    }


def _children_cpu_s() -> float:
    """User + system CPU seconds of this process's finished (joined) child processes."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _extract_task(profile: str, root: Path, encoder_dir: Path, out: Path, shard: tuple[int, int] | None, threads: int) -> dict:
    """One extraction task in its own process (what a pipeline task is): its counts and wall time."""
    from clipguard.features.extract import extract_features

    t0 = time.perf_counter()
    cfg = load_config(profile, {"features.torch_threads": threads})
    r = extract_features(root, cfg, encoder_dir, out, progress=False, shard=shard)
    return {"shard": shard, "clips": r.n_extracted, "wall_s": time.perf_counter() - t0, "load_s": r.load_seconds}


def _sharded(cfg, encoder_dir: Path | None, corpus: Path, n_clips: int, shards: int, repeat: int) -> dict:
    """One task (1 thread, all cores) vs ``shards`` parallel tasks + merge, alternated ``repeat`` times."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from clipguard.encoders.runtime import available_cpus
    from clipguard.features.extract import merge_feature_shards
    from clipguard.features.store_format import read_clip_features

    cores = available_cpus()
    variants = {"one_task_1_thread": (1, 1), f"one_task_{cores}_threads": (1, cores), f"{shards}_tasks_1_thread": (shards, 1)}
    spawn = multiprocessing.get_context("spawn")
    runs: dict[str, list[dict]] = {k: [] for k in variants}
    with tempfile.TemporaryDirectory(prefix="bench_shards_") as tmp:
        root = Path(tmp) / "root"
        sample = _sample_root(corpus, n_clips, root)
        if encoder_dir is None:
            encoder_dir = _fresh_encoder_dir(cfg, Path(tmp) / "enc")
        clips: dict[str, set] = {}
        for rep in range(repeat):
            for name, (tasks, threads) in variants.items():
                out = Path(tmp) / f"{name}-{rep}"
                cpu0 = _children_cpu_s()
                t0 = time.perf_counter()
                with ProcessPoolExecutor(tasks, mp_context=spawn) as pool:
                    futures = [
                        pool.submit(
                            _extract_task,
                            cfg.profile,
                            root,
                            encoder_dir,
                            out / f"part{i}",
                            (i, tasks) if tasks > 1 else None,
                            threads,
                        )
                        for i in range(tasks)
                    ]
                    done = [f.result() for f in futures]
                merge_s = 0.0
                if tasks > 1:
                    t1 = time.perf_counter()
                    merged = merge_feature_shards([out / f"part{i}" for i in range(tasks)], out / "merged", root=root)
                    merge_s = time.perf_counter() - t1
                    version_dir = merged.features_dir
                else:
                    (version_dir,) = (out / "part0").iterdir()
                wall = time.perf_counter() - t0
                cpu = _children_cpu_s() - cpu0  # the task processes, joined when the pool closed
                clips[name] = set(read_clip_features(version_dir, ["clip_id"])["clip_id"])
                runs[name].append(
                    {"wall_s": wall, "merge_s": merge_s, "task_cpu_s": cpu, "cores_busy": cpu / wall, "tasks": done}
                )
    if len({frozenset(c) for c in clips.values()}) != 1:
        raise RuntimeError(f"the variants extracted different clips: { {k: len(v) for k, v in clips.items()} }")
    median = {k: statistics.median(r["wall_s"] for r in v) for k, v in runs.items()}
    one_task_best = min(median[k] for k in variants if variants[k][0] == 1)
    sharded_name = f"{shards}_tasks_1_thread"
    sharded = median[sharded_name]
    paired = [  # per repeat: the faster one-task run over the sharded run of the same round
        min(runs[k][i]["wall_s"] for k in variants if variants[k][0] == 1) / runs[sharded_name][i]["wall_s"]
        for i in range(repeat)
    ]
    return {
        "clips": len(sample),
        "cores": cores,
        "shards": shards,
        "repeat": repeat,
        "median_wall_s": median,
        "runs": runs,
        "speedup_vs_best_one_task": one_task_best / sharded,
        "speedup_per_repeat": paired,
        "median_cores_busy": {k: statistics.median(r["cores_busy"] for r in v) for k, v in runs.items()},
        "speedup_vs_one_task_1_thread": median["one_task_1_thread"] / sharded,
        "clips_identical": True,
        "note": "wall time from launching the task processes to the merged feature version (process start, imports, "
        "encoder loading and the merge included); variants alternated within each repeat",
    }


def _fresh_encoder_dir(cfg, out: Path) -> Path:
    from clipguard.encoders.bundle import EncoderBundle

    bundle = EncoderBundle.from_config(cfg, vision_seed=0)
    return bundle.save(out, {"version": "ebenchfresh", "mode": "random_init", "complete": True})


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="local")
    ap.add_argument("--encoder-dir", type=Path, default=None, help="pretrained encoders (default: fresh init)")
    ap.add_argument("--corpus", type=Path, default=None, help="validated data root for the corpus measurement")
    ap.add_argument("--clips", type=int, default=64, help="corpus clips to extract")
    ap.add_argument("--threads", type=int, nargs="*", default=[1, 2], help="torch threads for the corpus runs (none: skip them)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--shards", type=int, default=0, help="also time N parallel shard tasks + merge vs one task (needs --corpus)")
    ap.add_argument("--out", type=Path, default=RESULT)
    args = ap.parse_args(argv)

    import torch

    from clipguard.encoders.bundle import EncoderBundle

    t_start = time.perf_counter()
    load_before = os.getloadavg()
    cfg = load_config(args.profile)
    t0 = time.perf_counter()
    if args.encoder_dir is not None:
        bundle, _ = EncoderBundle.load(args.encoder_dir, cfg)
    else:
        bundle = EncoderBundle.from_config(cfg, vision_seed=0)
    load_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="bench_clip_") as tmp:
        clip_path = _upload_clip(Path(tmp) / "upload20s.mp4")
        one = _one_core(cfg, bundle, clip_path, args.repeat)
    corpus = None
    if args.corpus is not None:
        corpus = {f"threads={n}": _corpus(cfg, args.encoder_dir, args.corpus, args.clips, n) for n in args.threads}
    sharded = None
    if args.shards > 1:
        if args.corpus is None:
            ap.error("--shards needs --corpus")
        sharded = _sharded(cfg, args.encoder_dir, args.corpus, args.clips, args.shards, args.repeat)

    result = {
        "benchmark": "extract",
        "profile": cfg.profile,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
        },
        "encoders": "pretrained " + str(args.encoder_dir) if args.encoder_dir else "fresh init (same cost)",
        "encoder_load_s": load_s,
        "one_core_20s_clip": one,
        "corpus_extraction": corpus,
        "sharded_extraction": sharded,
        "target_s_per_20s_clip_per_core": TARGET_S_PER_20S_CLIP_PER_CORE,
        "target_ratio": TARGET_S_PER_20S_CLIP_PER_CORE / one["s_per_20s_clip_per_core"],
        "meets_target": one["s_per_20s_clip_per_core"] < TARGET_S_PER_20S_CLIP_PER_CORE,
        "bench_wall_s": time.perf_counter() - t_start,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
