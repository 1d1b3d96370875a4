"""The paper's RCI ablations over seeds (MatchLM2Lite Tables 2, 4, 5/6), mean ± std.

:func:`run_ablations` trains and evaluates, for every seed:

* ``modality`` (Table 2): MatchLite stage 1 with V, V+A, V+T and V+A+T inputs; metrics
  overall and on the audio-, text- and visual-decided copies;
* ``teacher``: MatchLM (stage-1 SFT) against MatchLite without and with distillation;
* ``kd`` (Tables 2 and 4): stage 2 with distillation off (the same extra epochs with
  ``L_class`` only), logits only, embeddings only, and both;
* ``lambda`` (Tables 5/6, tied weights): both terms with ``lambda`` in {0.5, 1.0, 1.5, 2.0}.

Every run goes through the ordinary entry points (``train_teacher``, ``cache_teacher``,
``train_student``, ``evaluate_*``) under ``out_dir``, so runs shared between ablations
(the V+A+T stage-1 student, the lambda=1.5 "both" student, the teacher of a seed) are
trained once, and a rerun reuses everything already done. Epoch counts may be shrunk to
fit a time budget (``teacher_epochs`` ...); what was used is written into the outputs.

Outputs: ``<out_dir>/ablations.json`` (settings, per-seed test metrics of every variant —
overall and per subset, held-out edit types included —, mean and sample std over seeds,
paired differences and a verdict for each of the paper's directions, wall times) and
``<out_dir>/ablations.md`` (the tables; :mod:`clipguard.eval.report` builds both, and
``clipguard rci report`` turns the JSON into the README's results). With ``track`` one MLflow run ``rci-ablations``
gets the summary metrics, both files and the PR curves of seed 0's main models.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clipguard.config import Config, with_overrides
from clipguard.core.io import write_json
from clipguard.core.metrics import json_ready
from clipguard.core.tracking import Lineage, log_json, log_metrics, log_png
from clipguard.data.schema import data_version
from clipguard.encoders.runtime import available_cpus, configure_threads
from clipguard.eval.ablation_spec import (
    ABLATIONS,
    JSON_FILE,
    LAMBDAS,
    MARKDOWN_FILE,
    METRICS,
    MODALITIES,
    REASON_SUBSETS,
    SUBSET_METRICS,
)
from clipguard.eval.report import ablation_markdown, ablation_stats, ablation_tables, directions
from clipguard.features.store_format import resolve_features_dir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Variant:
    """One trained-and-evaluated model of one seed."""

    name: str
    seed: int
    model_dir: str
    metrics: dict[str, float]
    """test-split metrics: ap, f1 (at the validation threshold), r_at_p80, and ``<subset>.ap``"""
    train_seconds: float


def _summary(report: dict[str, Any]) -> dict[str, float]:
    m = report["metrics"]
    out = {k: float("nan") if m.get(k) is None else float(m[k]) for k in METRICS}
    for name in REASON_SUBSETS:
        out[f"{name}.ap"] = float("nan")
    for name, sub in report["subsets"].items():  # reason_*, heldout_edit(/<type>), heldout_source, ...
        if name != "all":
            for key in SUBSET_METRICS:
                out[f"{name}.{key}"] = float("nan") if sub.get(key) is None else float(sub[key])
    return out


@dataclass(frozen=True)
class _Context:
    """What every job of one ablation call shares (picklable, for worker processes)."""

    root: Path
    features_dir: Path
    dirs: dict[str, Path]
    split: str
    progress: bool


@dataclass(frozen=True)
class _Job:
    """One model to train (or find trained) and evaluate."""

    name: str
    seed: int
    cfg: Config
    kind: str = "student"
    """teacher | student"""
    stages: int = 1
    teacher_seed: int | None = None
    """the teacher whose cached outputs a stage-2 student distils (None: no teacher)"""


@dataclass(frozen=True)
class _Outcome:
    variant: Variant
    report: dict[str, Any]
    teacher_cache: str | None = None


def _run_job(ctx: _Context, job: _Job, teacher_cache: str | None) -> _Outcome:
    """Train (idempotently) and evaluate one variant; runs in the caller or in a worker process."""
    from clipguard.eval.evaluate import evaluate_student, evaluate_teacher

    configure_threads(job.cfg.models.training.torch_threads)
    d = ctx.dirs
    if job.kind == "teacher":
        from clipguard.training.teacher import train_teacher
        from clipguard.training.teacher_cache import cache_teacher

        teacher = train_teacher(ctx.root, job.cfg, d["teachers"], job.seed, d["media"], ctx.progress, track=False)
        cache = cache_teacher(
            teacher.model_dir, ctx.root, job.cfg, d["teacher_cache"], media_dir=d["media"], progress=ctx.progress
        )
        report = evaluate_teacher(
            teacher.model_dir,
            ctx.root,
            ctx.split,
            job.cfg,
            d["teacher_cache"],
            media_dir=d["media"],
            progress=ctx.progress,
            track=False,
        )
        variant = Variant(job.name, job.seed, str(teacher.model_dir), _summary(report), teacher.train_seconds)
        return _Outcome(variant, report, str(cache.path))

    from clipguard.training.student import train_student
    from clipguard.training.teacher import read_training_meta

    result = train_student(
        ctx.root, ctx.features_dir, job.cfg, d["students"], teacher_cache, job.seed, job.stages, ctx.progress, track=False
    )
    report = evaluate_student(result.model_dir, ctx.features_dir, ctx.root, ctx.split, job.cfg, track=False)
    seconds = result.train_seconds
    if result.init_dir is not None:  # stage 2: count stage 1 too
        seconds += float(read_training_meta(result.init_dir)["train_seconds"])
    return _Outcome(Variant(job.name, job.seed, str(result.model_dir), _summary(report), seconds), report)


def _run_all(ctx: _Context, jobs: list[_Job], caches: dict[int, str], workers: int, bar: Any, task: Any) -> list[_Outcome]:
    """Run ``jobs`` (independent of each other) in order, or on ``workers`` processes."""

    def cache_of(job: _Job) -> str | None:
        return caches[job.teacher_seed] if job.teacher_seed is not None else None

    def done(outcome: _Outcome) -> _Outcome:
        v = outcome.variant
        log.info(
            "ablation run done: %s seed %d, test AP %.4f, %.0f s of training", v.name, v.seed, v.metrics["ap"], v.train_seconds
        )
        bar.advance(task)
        return outcome

    if workers <= 1:
        return [done(_run_job(ctx, job, cache_of(job))) for job in jobs]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(_run_job, ctx, job, cache_of(job)): i for i, job in enumerate(jobs)}
        results: dict[int, _Outcome] = {}
        for f in as_completed(futures):
            results[futures[f]] = done(f.result())
        return [results[i] for i in range(len(jobs))]


def _kd_updates(mode: str, lam: float) -> dict[str, Any]:
    return {"models.distill.mode": mode, "models.distill.lambda_emb": lam, "models.distill.lambda_logits": lam}


def run_ablations(
    root: str | Path,
    features_dir: str | Path,
    out_dir: str | Path,
    cfg: Config,
    seeds: Sequence[int] = (0, 1, 2),
    which: Sequence[str] = ABLATIONS,
    teacher_epochs: int | None = None,
    student_epochs: int | None = None,
    distill_epochs: int | None = None,
    teacher_seeds: Sequence[int] | None = None,
    split: str = "test",
    workers: int = 1,
    progress: bool = True,
    track: bool = True,
) -> dict[str, Any]:
    """Run the selected ablations for every seed; write ``ablations.json`` + ``ablations.md``; return the JSON.

    Args:
        root: validated data root; features_dir: its extracted features.
        out_dir: where every model, cache and the two result files go (reruns reuse them).
        cfg: base configuration; ``*_epochs`` override the teacher / stage-1 / stage-2
            epochs of every run (to fit a time budget; recorded in the outputs).
        seeds: one set of student runs per seed; statistics are mean ± sample std over seeds.
        which: any of ``modality``, ``teacher``, ``kd``, ``lambda``.
        teacher_seeds: seeds of the teachers to train (default: ``seeds``); the students of
            the i-th seed distil from teacher ``teacher_seeds[i % len(teacher_seeds)]``.
        split: evaluated split (the F1 threshold comes from ``val``).
        workers: processes running independent trainings at once; each gets
            ``available CPUs // workers`` torch threads unless
            ``models.training.torch_threads`` is set (2 single-threaded runs beat one
            2-threaded run for these small models on 2 cores).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from clipguard.training.student import features_version

    unknown = set(which) - set(ABLATIONS)
    if unknown:
        raise ValueError(f"unknown ablations {sorted(unknown)} (choose from {', '.join(ABLATIONS)})")
    t0, cpu0 = time.perf_counter(), _cpu_seconds()
    updates: dict[str, Any] = {
        "models.teacher.epochs": teacher_epochs,
        "models.student.epochs": student_epochs,
        "models.distill.epochs": distill_epochs,
        # quality only: speed is a property of the architecture, measured once by
        # benchmarks/bench_student.py and by the pipeline's evaluation step, not 30 times here
        "models.speed.enabled": False,
    }
    if cfg.models.training.torch_threads is None:
        updates["models.training.torch_threads"] = max(1, available_cpus() // max(1, workers))
    base = with_overrides(cfg, {k: v for k, v in updates.items() if v is not None})
    configure_threads(base.models.training.torch_threads)
    root, features = Path(root), resolve_features_dir(features_dir)
    out = Path(out_dir)
    ctx = _Context(
        root, features, {k: out / k for k in ("teachers", "teacher_cache", "students", "media")}, split, progress and workers <= 1
    )
    lam = base.models.distill.lambda_logits
    need_teacher = bool({"teacher", "kd", "lambda"} & set(which))
    t_seeds = list(teacher_seeds) if teacher_seeds is not None else list(seeds)

    def student(name: str, seed: int, upd: dict[str, Any], stages: int = 1, distil: bool = False) -> _Job:
        teacher = t_seeds[list(seeds).index(seed) % len(t_seeds)] if distil else None
        return _Job(name, seed, with_overrides(base, upd), stages=stages, teacher_seed=teacher)

    vat = {"models.student.modalities": "vat"}
    first: list[_Job] = [_Job("MatchLM", s, base, kind="teacher") for s in (t_seeds if need_teacher else [])]
    second: list[_Job] = []
    for seed in seeds:
        if "modality" in which:
            first += [student(label, seed, {"models.student.modalities": m}) for m, label in MODALITIES.items()]
        elif need_teacher:
            first.append(student("V+A+T", seed, vat))  # the stage-1 model stage 2 starts from
        if "teacher" in which or "kd" in which:
            second.append(student("MatchLite (no KD)", seed, {**vat, **_kd_updates("off", lam)}, 2))
            second.append(student("MatchLite + KD", seed, {**vat, **_kd_updates("both", lam)}, 2, True))
        if "kd" in which:
            second += [
                student(f"KD {mode}", seed, {**vat, **_kd_updates(mode, lam)}, 2, True) for mode in ("logits", "embeddings")
            ]
        if "lambda" in which:
            for x in LAMBDAS:
                job = student(
                    "MatchLite + KD" if x == lam else f"KD lambda={x}", seed, {**vat, **_kd_updates("both", x)}, 2, True
                )
                if all((j.name, j.seed) != (job.name, job.seed) for j in second):
                    second.append(job)
    if need_teacher:
        _prepare_teacher_media(root, base, ctx.dirs["media"], progress)

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, disable=not progress or workers <= 1) as bar:
        task = bar.add_task(f"ablations ({workers} workers)", total=len(first) + len(second))
        outcomes = _run_all(ctx, first, {}, workers, bar, task)
        caches = {o.variant.seed: o.teacher_cache for o in outcomes if o.teacher_cache is not None}
        outcomes += _run_all(ctx, second, caches, workers, bar, task)
    variants = {(o.variant.name, o.variant.seed): o.variant for o in outcomes}
    reports = {(o.variant.name, o.variant.seed): o.report for o in outcomes}
    if "modality" not in which:  # V+A+T was trained only as stage 2's starting point
        variants = {k: v for k, v in variants.items() if k[0] != "V+A+T"}

    runs = [vars(v) for _, v in sorted(variants.items())]
    stats, seconds = ablation_stats({"runs": runs})
    names = sorted(stats)
    tables = ablation_tables(stats, seconds, which, lam)
    settings = {
        "split": split,
        "seeds": list(seeds),
        "teacher_seeds": t_seeds if need_teacher else [],
        "which": list(which),
        "workers": workers,
        "torch_threads": base.models.training.torch_threads,
        "epochs": {
            "teacher": base.models.teacher.epochs,
            "student_stage1": base.models.student.epochs,
            "student_stage2": base.models.distill.epochs,
            "shrunk_from": {
                "teacher": cfg.models.teacher.epochs,
                "student_stage1": cfg.models.student.epochs,
                "student_stage2": cfg.models.distill.epochs,
            },
        },
        "teacher_audio_window_seconds": base.models.teacher.audio_window_seconds,
        "lambda_default": lam,
        "balance": base.models.training.balance,
        "profile": cfg.profile,
    }
    result = {
        "data_version": data_version(root),
        "features_version": features_version(features),
        "settings": settings,
        "std": "sample standard deviation over seeds (ddof=1)",
        "metric_scale": "fractions in JSON; percent in the Markdown tables",
        "variants": {n: {"metrics": stats[n], "train_seconds": seconds[n]} for n in names},
        "runs": runs,
        "directions": directions(runs, list(seeds), t_seeds),
        "tables": tables,
        "wall_seconds": time.perf_counter() - t0,
        "cpu_seconds": _cpu_seconds() - cpu0,
    }
    write_json(out / JSON_FILE, json_ready(result))
    markdown = ablation_markdown(result)
    (out / MARKDOWN_FILE).write_text(markdown)
    if track:
        _track(result, markdown, reports, base)
    result["files"] = {"json": str(out / JSON_FILE), "markdown": str(out / MARKDOWN_FILE)}
    return result


def _cpu_seconds() -> float:
    """CPU time (user + system) of this process and of its finished child processes (the workers)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _prepare_teacher_media(root: Path, cfg: Config, media_dir: Path, progress: bool) -> None:
    """Decode the teacher's media once, before teacher jobs (possibly parallel) would each do it."""
    from clipguard.models.matchlm import MatchLMConfig, MatchLMProcessor
    from clipguard.training.media import load_or_build_media
    from clipguard.training.teacher import load_teacher_tokenizer, media_clip_ids

    tokenizer = load_teacher_tokenizer(cfg)
    processor = MatchLMProcessor(tokenizer, MatchLMConfig.from_settings(cfg.models.teacher, cfg.models.tasks, tokenizer))
    load_or_build_media(root, cfg, processor, media_clip_ids(root), media_dir, progress)


def _track(result: dict[str, Any], markdown: str, reports: dict[tuple[str, int], dict[str, Any]], cfg: Config) -> None:
    import mlflow

    from clipguard.training.loop import tracked_run

    lineage = Lineage(data_version=result["data_version"], encoder_version=result["features_version"])
    with tracked_run(True, "rci-ablations", cfg, lineage, {"rci.ablation": result["settings"]}, {"clipguard.step": "ablate"}):
        metrics = {_slug(name): {k: v["mean"] for k, v in entry["metrics"].items()} for name, entry in result["variants"].items()}
        log_metrics(metrics, prefix="ablation.")
        log_json(json_ready(result), f"rci/{JSON_FILE}")
        mlflow.log_text(markdown, f"rci/{MARKDOWN_FILE}")
        for (name, seed), report in sorted(reports.items()):
            if name in ("MatchLM", "MatchLite (no KD)", "MatchLite + KD") and seed == min(s for n, s in reports if n == name):
                log_png(report["files"]["png"], f"rci/pr_{_slug(name)}.png")


def _slug(name: str) -> str:
    """A variant name as an MLflow-safe metric / file name part."""
    return re.sub(r"[^0-9A-Za-z_.-]+", "_", name.replace("+", "plus")).strip("_")
