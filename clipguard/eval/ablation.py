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

Outputs: ``<out_dir>/ablations.json`` (settings, per-seed metrics of every variant, mean
and sample std over seeds, paired differences for the paper's directions, wall times) and
``<out_dir>/ablations.md`` (the tables). With ``track`` one MLflow run ``rci-ablations``
gets the summary metrics, both files and the PR curves of seed 0's main models.
"""

from __future__ import annotations

import logging
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clipguard.config import Config
from clipguard.data.schema import data_version
from clipguard.eval.metrics import json_ready
from clipguard.registry.tracking import Lineage, markdown_table

log = logging.getLogger(__name__)

ABLATIONS: tuple[str, ...] = ("modality", "teacher", "kd", "lambda")
MODALITIES: dict[str, str] = {"v": "V", "va": "V+A", "vt": "V+T", "vat": "V+A+T"}
KD_MODES: dict[str, str] = {"off": "no KD", "logits": "logits only", "embeddings": "embeddings only", "both": "logits + embeddings"}
LAMBDAS: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0)
METRICS: dict[str, str] = {"ap": "AP", "f1": "F1", "r_at_p80": "R@P80"}
REASON_SUBSETS: dict[str, str] = {"reason_visual": "AP visual", "reason_audio": "AP audio", "reason_text": "AP text"}
JSON_FILE = "ablations.json"
MARKDOWN_FILE = "ablations.md"


@dataclass(frozen=True)
class Variant:
    """One trained-and-evaluated model of one seed."""

    name: str
    seed: int
    model_dir: str
    metrics: dict[str, float]
    """test-split metrics: ap, f1 (at the validation threshold), r_at_p80, and ``<subset>.ap``"""
    train_seconds: float


def _with(cfg: Config, updates: dict[str, Any]) -> Config:
    """``cfg`` with dotted-key ``updates`` applied (validated again)."""
    data = cfg.model_dump(mode="json")
    for key, value in updates.items():
        node = data
        *parents, leaf = key.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
    return Config.model_validate(data)


def _summary(report: dict[str, Any]) -> dict[str, float]:
    m = report["metrics"]
    out = {k: float("nan") if m.get(k) is None else float(m[k]) for k in METRICS}
    for name in REASON_SUBSETS:
        sub = report["subsets"].get(name)
        out[f"{name}.ap"] = float("nan") if sub is None or sub.get("ap") is None else float(sub["ap"])
    return out


def mean_std(values: Sequence[float]) -> dict[str, Any]:
    """Mean and sample standard deviation (ddof=1; 0 for one value) of the finite values."""
    finite = [float(v) for v in values if v == v]
    if not finite:
        return {"mean": float("nan"), "std": float("nan"), "n": 0, "values": list(values)}
    std = statistics.stdev(finite) if len(finite) > 1 else 0.0
    return {"mean": statistics.fmean(finite), "std": std, "n": len(finite), "values": list(values)}


def _fmt(stat: dict[str, Any], scale: float = 100.0) -> str:
    if stat["n"] == 0:
        return "n/a"
    if stat["n"] == 1:
        return f"{stat['mean'] * scale:.2f} (1 seed)"
    return f"{stat['mean'] * scale:.2f} ± {stat['std'] * scale:.2f}"


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
    from clipguard.encoders.runtime import configure_threads
    from clipguard.eval.evaluate import evaluate_student, evaluate_teacher

    configure_threads(job.cfg.models.training.torch_threads)
    d = ctx.dirs
    if job.kind == "teacher":
        from clipguard.training.teacher import train_teacher
        from clipguard.training.teacher_cache import cache_teacher

        teacher = train_teacher(ctx.root, job.cfg, d["teachers"], job.seed, d["media"], ctx.progress, track=False)
        cache = cache_teacher(teacher.model_dir, ctx.root, job.cfg, d["teacher_cache"], media_dir=d["media"], progress=ctx.progress)
        report = evaluate_teacher(
            teacher.model_dir, ctx.root, ctx.split, job.cfg, d["teacher_cache"], media_dir=d["media"], progress=ctx.progress, track=False
        )
        variant = Variant(job.name, job.seed, str(teacher.model_dir), _summary(report), teacher.train_seconds)
        return _Outcome(variant, report, str(cache.path))

    from clipguard.training.student import train_student
    from clipguard.training.teacher import read_training_meta

    result = train_student(ctx.root, ctx.features_dir, job.cfg, d["students"], teacher_cache, job.seed, job.stages, ctx.progress, track=False)
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
        log.info("ablation run done: %s seed %d, test AP %.4f, %.0f s of training", v.name, v.seed, v.metrics["ap"], v.train_seconds)
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


def _table(rows: list[tuple[str, str]], stats: dict[str, dict[str, dict[str, Any]]], columns: dict[str, str], extra: Callable[[str], dict[str, str]] | None = None) -> list[dict[str, str]]:
    out = []
    for label, name in rows:
        if name not in stats:
            continue
        row = {"model": label}
        row.update({title: _fmt(stats[name][key]) for key, title in columns.items()})
        if extra is not None:
            row.update(extra(name))
        out.append(row)
    return out


def _directions(variants: dict[tuple[str, int], Variant], seeds: list[int], teacher_seeds: list[int]) -> dict[str, Any]:
    """Paired (per-seed) differences for the paper's claims, with whether the mean is positive.

    ``MatchLM`` of student seed ``seeds[i]`` is the teacher it distilled from,
    ``teacher_seeds[i % len(teacher_seeds)]``.
    """

    def get(name: str, i: int) -> Variant | None:
        seed = teacher_seeds[i % len(teacher_seeds)] if name == "MatchLM" and teacher_seeds else seeds[i]
        return variants.get((name, seed))

    claims = {
        "kd_vs_no_kd.ap": ("MatchLite + KD", "MatchLite (no KD)", "ap"),
        "kd_vs_no_kd.r_at_p80": ("MatchLite + KD", "MatchLite (no KD)", "r_at_p80"),
        "vat_vs_v.ap": ("V+A+T", "V", "ap"),
        "vat_vs_v.reason_audio.ap": ("V+A+T", "V", "reason_audio.ap"),
        "vat_vs_v.reason_text.ap": ("V+A+T", "V", "reason_text.ap"),
        "vat_vs_v.reason_visual.ap": ("V+A+T", "V", "reason_visual.ap"),
        "teacher_vs_student.ap": ("MatchLM", "MatchLite + KD", "ap"),
        "teacher_vs_student_no_kd.ap": ("MatchLM", "MatchLite (no KD)", "ap"),
    }
    out = {}
    for name, (a, b, key) in claims.items():
        values = []
        for i in range(len(seeds)):
            x, y = get(a, i), get(b, i)
            if x is not None and y is not None:
                values.append(x.metrics[key] - y.metrics[key])
        if values:
            stat = mean_std(values)
            out[name] = {"a": a, "b": b, "metric": key, **stat, "holds": bool(stat["n"] and stat["mean"] > 0)}
    return out


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

    from clipguard.encoders.io import write_json
    from clipguard.encoders.runtime import available_cpus, configure_threads
    from clipguard.features.store_format import resolve_features_dir
    from clipguard.training.student import features_version

    unknown = set(which) - set(ABLATIONS)
    if unknown:
        raise ValueError(f"unknown ablations {sorted(unknown)} (choose from {', '.join(ABLATIONS)})")
    t0, cpu0 = time.perf_counter(), _cpu_seconds()
    updates: dict[str, Any] = {
        "models.teacher.epochs": teacher_epochs,
        "models.student.epochs": student_epochs,
        "models.distill.epochs": distill_epochs,
    }
    if cfg.models.training.torch_threads is None:
        updates["models.training.torch_threads"] = max(1, available_cpus() // max(1, workers))
    base = _with(cfg, {k: v for k, v in updates.items() if v is not None})
    configure_threads(base.models.training.torch_threads)
    root, features = Path(root), resolve_features_dir(features_dir)
    out = Path(out_dir)
    ctx = _Context(root, features, {k: out / k for k in ("teachers", "teacher_cache", "students", "media")}, split, progress and workers <= 1)
    lam = base.models.distill.lambda_logits
    need_teacher = bool({"teacher", "kd", "lambda"} & set(which))
    t_seeds = list(teacher_seeds) if teacher_seeds is not None else list(seeds)

    def student(name: str, seed: int, upd: dict[str, Any], stages: int = 1, distil: bool = False) -> _Job:
        teacher = t_seeds[list(seeds).index(seed) % len(t_seeds)] if distil else None
        return _Job(name, seed, _with(base, upd), stages=stages, teacher_seed=teacher)

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
            second += [student(f"KD {mode}", seed, {**vat, **_kd_updates(mode, lam)}, 2, True) for mode in ("logits", "embeddings")]
        if "lambda" in which:
            for x in LAMBDAS:
                job = student("MatchLite + KD" if x == lam else f"KD lambda={x}", seed, {**vat, **_kd_updates("both", x)}, 2, True)
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

    by_name: dict[str, list[Variant]] = {}
    for (name, _), variant in sorted(variants.items()):
        by_name.setdefault(name, []).append(variant)
    names = sorted(by_name)
    stats = {n: {key: mean_std([v.metrics[key] for v in vs]) for key in vs[0].metrics} for n, vs in by_name.items()}
    seconds = {n: mean_std([v.train_seconds for v in vs]) for n, vs in by_name.items()}
    tables = _tables(stats, seconds, which, lam)
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
            "shrunk_from": {"teacher": cfg.models.teacher.epochs, "student_stage1": cfg.models.student.epochs, "student_stage2": cfg.models.distill.epochs},
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
        "runs": [vars(v) for v in variants.values()],
        "directions": _directions(variants, list(seeds), t_seeds),
        "tables": tables,
        "wall_seconds": time.perf_counter() - t0,
        "cpu_seconds": _cpu_seconds() - cpu0,
    }
    write_json(out / JSON_FILE, json_ready(result))
    markdown = _markdown(result)
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


def _tables(stats: dict[str, Any], seconds: dict[str, Any], which: Sequence[str], lam: float) -> dict[str, list[dict[str, str]]]:
    secs = {n: f"{s['mean']:.0f} ± {s['std']:.0f}" for n, s in seconds.items()}
    tables: dict[str, list[dict[str, str]]] = {}
    if "modality" in which:
        columns = {**METRICS, **{f"{k}.ap": v for k, v in REASON_SUBSETS.items()}}
        tables["modality"] = _table([(label, label) for label in MODALITIES.values()], stats, columns)
    if "teacher" in which:
        rows = [("MatchLM (teacher)", "MatchLM"), ("MatchLite (no KD)", "MatchLite (no KD)"), ("MatchLite + KD", "MatchLite + KD")]
        tables["teacher_vs_student"] = _table(rows, stats, METRICS, lambda n: {"train s": secs[n]})
    if "kd" in which:
        rows = [
            ("no KD", "MatchLite (no KD)"),
            ("logits only", "KD logits"),
            ("embeddings only", "KD embeddings"),
            ("logits + embeddings", "MatchLite + KD"),
        ]
        tables["kd"] = _table(rows, stats, METRICS)
    if "lambda" in which:
        rows = [(f"λ = {x}", "MatchLite + KD" if x == lam else f"KD lambda={x}") for x in LAMBDAS]
        tables["lambda"] = _table(rows, stats, METRICS)
    return tables


_TITLES = {
    "modality": "Input modalities (MatchLite stage 1; Table 2)",
    "teacher_vs_student": "Teacher vs student",
    "kd": "Distillation terms (stage 2; Tables 2/4)",
    "lambda": "Distillation weight λ = λ_emb = λ_logits (stage 2; Tables 5/6)",
}


def _markdown(result: dict[str, Any]) -> str:
    s = result["settings"]
    e = s["epochs"]
    lines = [
        "# RCI ablations",
        "",
        f"Data {result['data_version']}, features {result['features_version']}, split `{s['split']}`, "
        f"seeds {s['seeds']}; mean ± sample std over seeds, in percent. F1 at the threshold that maximises F1 on `val`.",
        f"Epochs: teacher {e['teacher']}, student stage 1 {e['student_stage1']}, stage 2 {e['student_stage2']} "
        f"(configured: {e['shrunk_from']['teacher']} / {e['shrunk_from']['student_stage1']} / {e['shrunk_from']['student_stage2']}). "
        f"Teacher audio window {s['teacher_audio_window_seconds']} s; teacher seeds {s['teacher_seeds']}. "
        f"Sampling: {s['balance']}. {s['workers']} worker(s) x {s['torch_threads']} torch thread(s); wall time {result['wall_seconds']:.0f} s, "
        f"CPU time {result['cpu_seconds']:.0f} s (work done by this call; reused runs cost nothing).",
        "",
    ]
    for key, rows in result["tables"].items():
        lines += [f"## {_TITLES[key]}", "", markdown_table(rows)]
    if result["directions"]:
        rows = [
            {
                "claim": name,
                "Δ mean ± std (pts)": f"{d['mean'] * 100:.2f} ± {d['std'] * 100:.2f}",
                "per seed (pts)": ", ".join("n/a" if v != v else f"{v * 100:.2f}" for v in d["values"]),
                "holds": "yes" if d["holds"] else "no",
            }
            for name, d in result["directions"].items()
        ]
        lines += ["## Directions (paired differences a − b per seed)", "", markdown_table(rows)]
    return "\n".join(lines)


def _track(result: dict[str, Any], markdown: str, reports: dict[tuple[str, int], dict[str, Any]], cfg: Config) -> None:
    import mlflow

    from clipguard.registry.tracking import log_json, log_metrics, log_png
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
