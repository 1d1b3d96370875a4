"""The ``clipguard`` command line.

Global options choose the profile and override any config key::

    clipguard --profile gpu --set media.fps=2 data validate data/corpus

Heavy libraries are imported inside the commands, so ``clipguard --help`` is instant.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.console import Console

from clipguard.config import Config, load_config, parse_overrides

if TYPE_CHECKING:
    from clipguard.banks import BankStore

app = typer.Typer(no_args_is_help=True, add_completion=False, help="clipguard: multimodal video moderation MLOps.")
data_app = typer.Typer(no_args_is_help=True, help="Corpus generation, ingestion and the data contract.")
media_app = typer.Typer(no_args_is_help=True, help="Inspect and decode media files.")
config_app = typer.Typer(no_args_is_help=True, help="Show the resolved configuration.")
features_app = typer.Typer(no_args_is_help=True, help="Encoder pretraining, feature extraction, Feast.")
rci_app = typer.Typer(
    no_args_is_help=True,
    help="Reproduced-content identification: train, evaluate, ablate, compare with baselines, report; score pairs, search, index.",
)
registry_app = typer.Typer(no_args_is_help=True, help="Model registry: show, promote, rollback (MLflow aliases).")
app.add_typer(data_app, name="data")
app.add_typer(media_app, name="media")
app.add_typer(config_app, name="config")
app.add_typer(registry_app, name="registry")
app.add_typer(features_app, name="features")
app.add_typer(rci_app, name="rci")

console = Console(stderr=True)


@app.callback()
def _main(
    ctx: typer.Context,
    profile: Annotated[Optional[str], typer.Option(help="config profile (clipguard/configs/<profile>.yaml)")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="override a config key: --set media.fps=2")] = None,
) -> None:
    try:
        ctx.obj = {"profile": profile, "overrides": parse_overrides(set_ or [])}
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e


def _cfg(ctx: typer.Context, **overrides) -> Config:
    o = dict(ctx.obj["overrides"])
    o.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return load_config(ctx.obj["profile"], o)
    except (FileNotFoundError, ValueError) as e:
        console.print(f"[red]config error:[/red] {e}")
        raise typer.Exit(2) from e


@config_app.command("show")
def config_show(ctx: typer.Context) -> None:
    """Print the resolved configuration as JSON."""
    typer.echo(_cfg(ctx).model_dump_json(indent=2))


@data_app.command("synth")
def data_synth(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="output data root")] = Path("data/corpus"),
    seed: Annotated[int, typer.Option(help="random seed (same seed, same corpus)")] = 0,
    clips: Annotated[Optional[int], typer.Option(help="base short videos (default from config)")] = None,
    days: Annotated[Optional[int], typer.Option(help="days of traffic (default from config)")] = None,
) -> None:
    """Generate the synthetic multimodal corpus (real MP4s + clip/pair manifests)."""
    from clipguard.synth import generate_corpus

    cfg = _cfg(ctx, seed=seed)
    t0 = time.perf_counter()
    summary = generate_corpus(out, seed=seed, cfg=cfg, clips=clips, days=days)
    console.print(summary)
    console.print(f"corpus at {out} in {time.perf_counter() - t0:.1f} s")


@data_app.command("validate")
def data_validate(
    ctx: typer.Context,
    root: Annotated[Path, typer.Argument(help="data root (media + manifests/)")] = Path("data/corpus"),
    clips: Annotated[Optional[Path], typer.Option(help="clip manifest (default ROOT/manifests/clips.parquet)")] = None,
    pairs: Annotated[Optional[Path], typer.Option(help="pair manifest (default ROOT/manifests/pairs.parquet)")] = None,
    out: Annotated[Optional[Path], typer.Option(help="output folder (default ROOT/validated)")] = None,
    force: Annotated[bool, typer.Option(help="re-run even if inputs are unchanged")] = False,
    strict: Annotated[bool, typer.Option(help="exit 1 when any row is quarantined")] = False,
) -> None:
    """Validate manifests and media; write accepted rows, quarantine, and a report.

    Bad rows never stop the run: they go to validated/*_quarantine.parquet with reasons.
    """
    from clipguard.data.validate import validate_manifests

    cfg = _cfg(ctx)
    if not root.is_dir():
        console.print(f"[red]error:[/red] data root {root} is not a folder")
        raise typer.Exit(2)
    try:
        result = validate_manifests(root, cfg, clips_path=clips, pairs_path=pairs, out_dir=out, force=force)
    except (FileNotFoundError, ValueError) as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from e
    console.print(f"report: {result.html_path}")
    quarantined = result.clips.quarantined + (result.pairs.quarantined if result.pairs else 0)
    if strict and quarantined:
        raise typer.Exit(1)


@data_app.command("ingest")
def data_ingest(
    ctx: typer.Context,
    root: Annotated[Path, typer.Argument(help="data root holding your media")],
    videos_dir: Annotated[str, typer.Option(help="media folder under ROOT")] = "videos",
    metadata: Annotated[Optional[Path], typer.Option(help="CSV/Parquet keyed by video_uri: title, ocr, asr, labels, ...")] = None,
    source: Annotated[str, typer.Option(help="source of clips without metadata")] = "upload",
    split: Annotated[str, typer.Option(help="split of clips without metadata")] = "traffic",
) -> None:
    """Cut your own videos into clip windows and write ROOT/manifests/clips.parquet."""
    from clipguard.data.ingest import ingest_videos

    cfg = _cfg(ctx)
    try:
        r = ingest_videos(root, cfg, videos_dir=videos_dir, metadata=metadata, source=source, split=split)
    except (FileNotFoundError, ValueError) as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from e
    console.print(
        f"{r.files_in} files: {r.files_ingested} ingested into {r.clips} clips, "
        f"{r.files_quarantined} quarantined" + (f" ({r.quarantine})" if r.quarantine else "")
    )
    console.print(f"manifest: {r.manifest}")


@media_app.command("probe")
def media_probe(path: Path) -> None:
    """Describe a media file (duration, streams, variable frame rate)."""
    from dataclasses import asdict

    from clipguard.media.reader import MediaError, probe

    try:
        typer.echo(json.dumps(asdict(probe(path)), indent=2))
    except MediaError as e:
        console.print(f"[red]{e.reason}[/red]: {e}")
        raise typer.Exit(1) from e


def _work(cfg: Config, *parts: str) -> Path:
    return Path(cfg.work_dir).joinpath(*parts)


@features_app.command("pretrain")
def features_pretrain(
    ctx: typer.Context,
    root: Annotated[Path, typer.Argument(help="validated data root")] = Path("data/corpus"),
    mode: Annotated[str, typer.Option(help="moco or moco_clip")] = "moco_clip",
    out: Annotated[Optional[Path], typer.Option(help="encoder folder (default WORK/encoders)")] = None,
    seed: Annotated[int, typer.Option(help="training seed")] = 0,
    compare: Annotated[bool, typer.Option(help="run moco and moco_clip over --seeds and write the Recall@K table")] = False,
    seeds: Annotated[str, typer.Option(help="seeds for --compare, comma-separated")] = "0,1,2",
) -> None:
    """Pretrain the vision/audio encoders (MoCo, + CLIP alignment) on the train split."""
    from clipguard.encoders.pretrain import compare_pretraining, pretrain_encoders

    cfg = _cfg(ctx)
    out = out or _work(cfg, "encoders")
    if compare:
        table = compare_pretraining(
            root,
            cfg,
            seeds=tuple(int(s) for s in seeds.split(",")),
            out_dir=out,
            out_json=out / "pretrain_compare.json",
        )
        typer.echo(json.dumps(table, indent=2, default=str))
        return
    result = pretrain_encoders(root, cfg, mode=mode, out_dir=out, seed=seed)  # type: ignore[arg-type]
    typer.echo(json.dumps(result.to_dict(), indent=2, default=str))


@features_app.command("extract")
def features_extract(
    ctx: typer.Context,
    root: Annotated[Path, typer.Argument(help="validated data root")] = Path("data/corpus"),
    encoder_dir: Annotated[Optional[Path], typer.Option(help="pretrained encoder folder (from `features pretrain`)")] = None,
    out: Annotated[Optional[Path], typer.Option(help="features folder (default WORK/features)")] = None,
) -> None:
    """Extract frame/audio/text tokens, pooled vectors and clip embeddings (resumable)."""
    from clipguard.features.extract import extract_features

    cfg = _cfg(ctx)
    if encoder_dir is None:
        console.print("[red]error:[/red] --encoder-dir is required (the folder `features pretrain` printed)")
        raise typer.Exit(2)
    result = extract_features(root, cfg, encoder_dir, out or _work(cfg, "features"))
    typer.echo(json.dumps(result.counts(), indent=2, default=str))


@features_app.command("materialize")
def features_materialize(
    ctx: typer.Context,
    features: Annotated[Path, typer.Argument(help="features folder of one encoder version (holds clip_features.parquet)")],
) -> None:
    """Register the feature views in Feast and load new rows into the online store."""
    from clipguard.features.store import materialize_features

    typer.echo(json.dumps(materialize_features(features, _cfg(ctx)).to_dict(), indent=2, default=str))


@features_app.command("training-set")
def features_training_set(
    ctx: typer.Context,
    features: Annotated[Path, typer.Argument(help="features folder of one encoder version")],
    root: Annotated[Path, typer.Option(help="validated data root (its pairs are the entity rows)")] = Path("data/corpus"),
    out: Annotated[Path, typer.Option(help="output Parquet")] = Path("runs/training_set.parquet"),
) -> None:
    """Point-in-time join of query/candidate features onto the labelled pairs (Feast)."""
    from clipguard.features.store import training_set

    typer.echo(json.dumps(training_set(root, features, out, _cfg(ctx)).to_dict(), indent=2, default=str))


@rci_app.command("score")
def rci_score(
    ctx: typer.Context,
    pairs: Annotated[Path, typer.Option(help="CSV with query_path,candidate_path (+ optional text columns)")],
    out: Annotated[Path, typer.Option(help="output CSV: one row per input row, with score and error")],
    model: Annotated[Optional[str], typer.Option(help="student: models:/ URI or model folder (default: champion)")] = None,
    encoder_dir: Annotated[Optional[Path], typer.Option(help="pretrained encoder folder (default: the model's)")] = None,
    media_root: Annotated[Optional[Path], typer.Option(help="folder relative paths in the CSV are read from")] = None,
) -> None:
    """Score arbitrary pairs of video files end to end (decode, encode, student)."""
    from clipguard.rci.score import score_pairs
    from clipguard.rci.student import ModelNotFoundError

    cfg = _cfg(ctx)
    try:
        r = score_pairs(pairs, out, cfg, model_uri=model, encoder_dir=encoder_dir, media_root=media_root)
    except (*_RCI_ERRORS, ModelNotFoundError) as e:
        raise _rci_exit(e) from e
    console.print(f"{r.n_rows} rows: {r.n_scored} scored, {r.n_errors} with errors -> {r.out_csv}")


@rci_app.command("search")
def rci_search(
    ctx: typer.Context,
    video: Annotated[Path, typer.Option(help="query video file")],
    index_dir: Annotated[Path, typer.Option(help="index version folder (from `rci index`)")],
    top_k: Annotated[Optional[int], typer.Option(help="candidates to retrieve and score")] = None,
    model: Annotated[Optional[str], typer.Option(help="student: models:/ URI or model folder (default: champion)")] = None,
) -> None:
    """Retrieve the top-k candidates by clip embedding, then score each pair with the student."""
    from clipguard.media.reader import MediaError
    from clipguard.rci.search import search_video

    cfg = _cfg(ctx)
    try:
        rows = search_video(video, cfg, index_dir, top_k=top_k, model_uri=model)
    except MediaError as e:
        console.print(f"[red]{e.reason}[/red]: {e}")
        raise typer.Exit(1) from e
    typer.echo(json.dumps(rows, indent=2, default=str))


@rci_app.command("index")
def rci_index(
    ctx: typer.Context,
    features: Annotated[Path, typer.Argument(help="features folder of one encoder version")],
    kind: Annotated[Optional[str], typer.Option(help="hnsw or ivfpq (default from config)")] = None,
    out: Annotated[Optional[Path], typer.Option(help="output root (default WORK/index)")] = None,
) -> None:
    """Build (or find) the FAISS index of the clip embeddings."""
    from dataclasses import asdict, is_dataclass

    from clipguard.index.faiss_index import build_index

    cfg = _cfg(ctx)
    r = build_index(features, cfg, out_dir=out, kind=kind)  # type: ignore[arg-type]
    typer.echo(json.dumps(asdict(r) if is_dataclass(r) else str(r), indent=2, default=str))


# --------------------------------------------------------------------------- rci: training, evaluation, ablations, report

_RCI_ERRORS = (FileNotFoundError, ValueError, KeyError)


def _rci_exit(e: BaseException) -> typer.Exit:
    """Print a missing / bad input error and return the exit (code 2) to raise."""
    console.print(f"[red]error:[/red] {e.args[0] if isinstance(e, KeyError) and e.args else e}")
    return typer.Exit(2)


def _ints(text: Optional[str], option: str) -> Optional[list[int]]:
    if text is None:
        return None
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError as e:
        raise typer.BadParameter(f"{option} takes comma-separated integers, got {text!r}") from e


def _names(text: str, known: tuple[str, ...], option: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise typer.BadParameter(f"{option}: unknown {', '.join(unknown) or '(empty)'}; choose from {', '.join(known)}")
    return names


def _echo(obj) -> None:
    typer.echo(json.dumps(obj, indent=2, default=str))


def _to_stderr():
    """Send what the library prints (rich progress bars) to stderr, keeping stdout for the JSON result."""
    import contextlib
    import sys

    return contextlib.redirect_stdout(sys.stderr)


def _feature_check(root: Path, features: Path, splits: tuple[str, ...]) -> None:
    from clipguard.eval.inputs import require_features

    coverage = require_features(root, features, splits)
    if coverage.missing:
        console.print(f"[yellow]warning:[/yellow] {coverage.message}")


@rci_app.command("train-teacher")
def rci_train_teacher(
    ctx: typer.Context,
    root: Annotated[Path, typer.Argument(help="validated data root")] = Path("data/corpus"),
    out: Annotated[Optional[Path], typer.Option(help="teachers root (default WORK/rci/teachers)")] = None,
    seed: Annotated[Optional[int], typer.Option(help="init / sampling seed (default: config seed)")] = None,
    media_dir: Annotated[Optional[Path], typer.Option(help="decoded-media cache (default WORK/rci/media)")] = None,
    epochs: Annotated[Optional[int], typer.Option(min=1, help="models.teacher.epochs")] = None,
    track: Annotated[bool, typer.Option(help="log the run to MLflow")] = True,
) -> None:
    """Stage-1 SFT of the MatchLM teacher on the train pairs (resumable; a finished version is reused)."""
    from clipguard.eval.inputs import require_data_root
    from clipguard.training.teacher import train_teacher

    cfg = _cfg(ctx, **{"models.teacher.epochs": epochs})
    try:
        require_data_root(root)
        with _to_stderr():
            r = train_teacher(root, cfg, out, seed, media_dir, progress=True, track=track)
    except _RCI_ERRORS as e:
        raise _rci_exit(e) from e
    _echo({k: v for k, v in r.to_dict().items() if k != "history"})


@rci_app.command("cache-teacher")
def rci_cache_teacher(
    ctx: typer.Context,
    teacher: Annotated[Path, typer.Argument(help="trained teacher folder (from `rci train-teacher`)")],
    root: Annotated[Path, typer.Option(help="validated data root")] = Path("data/corpus"),
    out: Annotated[Optional[Path], typer.Option(help="caches root (default WORK/rci/teacher_cache)")] = None,
    splits: Annotated[str, typer.Option(help="pair splits to cover, comma-separated")] = "train,val,test",
    media_dir: Annotated[Optional[Path], typer.Option(help="decoded-media cache (default WORK/rci/media)")] = None,
) -> None:
    """Compute the frozen teacher's logits and embeddings once per (teacher, data) version."""
    from clipguard.eval.inputs import model_kind, require_data_root
    from clipguard.training.teacher_cache import cache_teacher

    cfg = _cfg(ctx)
    try:
        require_data_root(root)
        if model_kind(teacher) != "teacher":
            raise ValueError(f"{teacher} is a student, not a teacher")
        with _to_stderr():
            outputs = cache_teacher(
                teacher, root, cfg, out, tuple(s.strip() for s in splits.split(",")), media_dir, progress=True
            )
    except _RCI_ERRORS as e:
        raise _rci_exit(e) from e
    _echo(
        {
            "teacher_cache": str(outputs.path),
            "teacher_version": outputs.teacher_version,
            "data_version": outputs.data_version,
            "pairs": len(outputs.pair_ids),
        }
    )


@rci_app.command("train-student")
def rci_train_student(
    ctx: typer.Context,
    root: Annotated[Path, typer.Argument(help="validated data root")] = Path("data/corpus"),
    features: Annotated[
        Optional[Path], typer.Option(help="extracted features of ROOT (`features extract`) (default WORK/features)")
    ] = None,
    teacher_cache: Annotated[
        Optional[Path], typer.Option(help="teacher cache folder (`rci cache-teacher`); stage 2 distils from it")
    ] = None,
    out: Annotated[Optional[Path], typer.Option(help="students root (default WORK/rci/students)")] = None,
    seed: Annotated[Optional[int], typer.Option(help="init / sampling seed (default: config seed)")] = None,
    stages: Annotated[int, typer.Option(min=1, max=2, help="1: supervised only; 2: then distillation (or its control)")] = 2,
    distill_mode: Annotated[Optional[str], typer.Option(help="both / logits / embeddings / off (models.distill.mode)")] = None,
    modalities: Annotated[Optional[str], typer.Option(help="v / va / vt / vat (models.student.modalities)")] = None,
    epochs: Annotated[Optional[int], typer.Option(min=1, help="stage-1 epochs (models.student.epochs)")] = None,
    distill_epochs: Annotated[Optional[int], typer.Option(min=1, help="stage-2 epochs (models.distill.epochs)")] = None,
    track: Annotated[bool, typer.Option(help="log the run to MLflow")] = True,
) -> None:
    """Train MatchLite from cached features: stage 1 supervised, stage 2 distilled from the teacher cache."""
    from clipguard.eval.inputs import require_data_root, require_teacher_cache
    from clipguard.training.student import train_student

    cfg = _cfg(
        ctx,
        **{
            "models.distill.mode": distill_mode,
            "models.student.modalities": modalities,
            "models.student.epochs": epochs,
            "models.distill.epochs": distill_epochs,
        },
    )
    features = features or _work(cfg, "features")
    try:
        require_data_root(root)
        _feature_check(root, features, ("train", "val"))
        if teacher_cache is not None:
            require_teacher_cache(teacher_cache)
        elif stages == 2 and cfg.models.distill.mode != "off":
            raise ValueError(
                f"stage 2 with distill mode {cfg.models.distill.mode!r} needs --teacher-cache "
                "(`clipguard rci cache-teacher TEACHER_DIR`), or use --distill-mode off / --stages 1"
            )
        with _to_stderr():
            r = train_student(root, features, cfg, out, teacher_cache, seed, stages, progress=True, track=track)
    except _RCI_ERRORS as e:
        raise _rci_exit(e) from e
    _echo({k: v for k, v in r.to_dict().items() if k != "history"})


@rci_app.command("evaluate")
def rci_evaluate(
    ctx: typer.Context,
    model_dir: Annotated[Path, typer.Argument(help="trained student or teacher folder")],
    root: Annotated[Path, typer.Option(help="validated data root")] = Path("data/corpus"),
    features: Annotated[Optional[Path], typer.Option(help="extracted features (students only)")] = None,
    split: Annotated[str, typer.Option(help="evaluated split (the F1 threshold comes from val)")] = "test",
    out: Annotated[Optional[Path], typer.Option(help="output folder (default MODEL_DIR/eval)")] = None,
    cache_dir: Annotated[Optional[Path], typer.Option(help="teachers only: caches root (default WORK/rci/teacher_cache)")] = None,
    media_dir: Annotated[Optional[Path], typer.Option(help="teachers only: decoded-media cache")] = None,
    track: Annotated[bool, typer.Option(help="log the evaluation to MLflow")] = True,
) -> None:
    """AP / F1 / R@P80 overall and per subset; writes metrics_<split>.json, pr_<split>.png, scores."""
    from rich.table import Table

    from clipguard.eval.evaluate import evaluate_student, evaluate_teacher, subset_rows
    from clipguard.eval.inputs import model_kind, require_data_root

    cfg = _cfg(ctx)
    try:
        require_data_root(root)
        kind = model_kind(model_dir)
        if kind == "student":
            if features is None:
                raise ValueError(f"{model_dir} is a student: pass --features (the features it was trained on)")
            _feature_check(root, features, ("val", split))
            with _to_stderr():
                report = evaluate_student(model_dir, features, root, split, cfg, out, track=track)
        else:
            with _to_stderr():
                report = evaluate_teacher(model_dir, root, split, cfg, cache_dir, out, media_dir, progress=True, track=track)
    except _RCI_ERRORS as e:
        raise _rci_exit(e) from e
    table = Table(title=f"{kind} on {split} (threshold {report['threshold']:.4g} from val)")
    rows = subset_rows(report)
    for column in rows[0]:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("n/a" if v is None or v != v else f"{v:.4f}" if isinstance(v, float) else str(v) for v in row.values()))
    console.print(table)
    _echo(
        {"model": kind, "split": split, "threshold": report["threshold"], "metrics": report["metrics"], "files": report["files"]}
    )


@rci_app.command("baselines")
def rci_baselines(
    ctx: typer.Context,
    root: Annotated[Path, typer.Argument(help="validated data root")] = Path("data/corpus"),
    features: Annotated[Optional[Path], typer.Option(help="extracted features (needed by the embedding baseline)")] = None,
    methods: Annotated[
        str, typer.Option(help="comma-separated: vpdq, pdq, embedding, text_embedding, duration, frame_count, chromaprint")
    ] = "vpdq,pdq,embedding,text_embedding,duration,frame_count,chromaprint",
    split: Annotated[str, typer.Option(help="evaluated split (the F1 threshold comes from val)")] = "test",
    student_report: Annotated[
        Optional[Path], typer.Option(help="a student's metrics_<split>.json (`rci evaluate`) to compare with")
    ] = None,
    out: Annotated[Optional[Path], typer.Option(help="output folder (default WORK/baselines/eval)")] = None,
) -> None:
    """PDQ / vPDQ / embedding cosine and the length shortcuts on the same val + test pairs as MatchLite, overall and per subset."""
    from rich.table import Table

    from clipguard.baselines.scores import METHODS, NEEDS_FEATURES
    from clipguard.eval.baselines import compare_baselines
    from clipguard.eval.inputs import require_data_root

    chosen = _names(methods, METHODS, "--methods")
    cfg = _cfg(ctx)
    try:
        require_data_root(root)
        if set(NEEDS_FEATURES) & set(chosen):
            if features is None:
                raise ValueError(
                    f"each of the {', '.join(NEEDS_FEATURES)} baselines needs --features "
                    "(or leave them out: --methods vpdq,pdq,duration)"
                )
            _feature_check(root, features, ("val", split))
        if student_report is not None and not student_report.is_file():
            raise FileNotFoundError(f"student report {student_report} not found: run `clipguard rci evaluate STUDENT_DIR` first")
        with _to_stderr():
            report = compare_baselines(root, cfg, split, chosen, features, student_report, out, progress=True)  # type: ignore[arg-type]
    except _RCI_ERRORS as e:
        raise _rci_exit(e) from e
    table = Table(title=f"baselines on {split}")
    for column in ("method", "AP", "R@P80", "F1", "unscored pairs", "student higher everywhere"):
        table.add_column(column)
    for method, r in report["baselines"].items():
        m = r["metrics"]
        beats = r.get("student_beats_baseline")
        table.add_row(
            method,
            *(f"{m[k]:.4f}" if m.get(k) is not None else "n/a" for k in ("ap", "r_at_p80", "f1")),
            str(r["n_errors"]),
            "n/a" if beats is None else str(beats),
        )
    console.print(table)
    _echo(report["files"])


@rci_app.command("ablate")
def rci_ablate(
    ctx: typer.Context,
    root: Annotated[Path, typer.Argument(help="validated data root")] = Path("data/corpus"),
    features: Annotated[Optional[Path], typer.Option(help="extracted features of ROOT (default WORK/features)")] = None,
    out: Annotated[
        Optional[Path], typer.Option(help="models, caches and ablations.json/.md (default WORK/rci/ablations)")
    ] = None,
    seeds: Annotated[str, typer.Option(help="student seeds, comma-separated")] = "0,1,2",
    which: Annotated[str, typer.Option(help="comma-separated: modality, teacher, kd, lambda")] = "modality,teacher,kd,lambda",
    teacher_seeds: Annotated[Optional[str], typer.Option(help="teacher seeds (default: --seeds)")] = None,
    teacher_epochs: Annotated[Optional[int], typer.Option(min=1, help="shrink every teacher run to this many epochs")] = None,
    student_epochs: Annotated[Optional[int], typer.Option(min=1, help="stage-1 epochs of every student")] = None,
    distill_epochs: Annotated[Optional[int], typer.Option(min=1, help="stage-2 epochs of every student")] = None,
    split: Annotated[str, typer.Option(help="evaluated split")] = "test",
    workers: Annotated[int, typer.Option(min=1, help="trainings run at once (processes)")] = 1,
    track: Annotated[bool, typer.Option(help="log the summary to MLflow")] = True,
) -> None:
    """The paper's ablations (modality, teacher vs student, KD terms, lambda) over seeds; reruns reuse finished runs."""
    from clipguard.eval.ablation import ABLATIONS, run_ablations
    from clipguard.eval.inputs import require_data_root
    from clipguard.eval.report import default_paths

    chosen = _names(which, ABLATIONS, "--which")
    seed_list = _ints(seeds, "--seeds") or []
    teacher_list = _ints(teacher_seeds, "--teacher-seeds")
    if not seed_list:
        raise typer.BadParameter("--seeds: give at least one seed")
    cfg = _cfg(ctx)
    features = features or _work(cfg, "features")
    out = out or default_paths(cfg, split)["ablation"].parent
    try:
        require_data_root(root)
        _feature_check(root, features, ("train", "val", split))
        with _to_stderr():
            result = run_ablations(
                root,
                features,
                out,
                cfg,
                seeds=seed_list,
                which=chosen,
                teacher_epochs=teacher_epochs,
                student_epochs=student_epochs,
                distill_epochs=distill_epochs,
                teacher_seeds=teacher_list,
                split=split,
                workers=workers,
                progress=True,
                track=track,
            )
    except _RCI_ERRORS as e:
        raise _rci_exit(e) from e
    console.print(f"ablations in {result['wall_seconds']:.0f} s; tables: {result['files']['markdown']}")
    _echo({"files": result["files"], "directions": {k: d["verdict"] for k, d in result["directions"].items()}})


@rci_app.command("report")
def rci_report(
    ctx: typer.Context,
    ablation: Annotated[
        Optional[Path], typer.Option(help="ablations.json (default WORK/rci/ablations/ablations.json if present)")
    ] = None,
    baselines: Annotated[
        Optional[Path], typer.Option(help="baselines_<split>.json (default WORK/baselines/eval/baselines_test.json if present)")
    ] = None,
    flops: Annotated[Optional[Path], typer.Option(help="FLOPs JSON (default benchmarks/results/flops.json if present)")] = None,
    out: Annotated[Optional[Path], typer.Option(help="write the Markdown here")] = None,
    readme: Annotated[Optional[Path], typer.Option(help="replace the rci-results marked region of this README")] = None,
    student: Annotated[
        Optional[str], typer.Option(help="ablation variant compared with the baselines (default: MatchLite + KD)")
    ] = None,
) -> None:
    """Markdown tables of the ablations, baselines vs MatchLite and FLOPs, with a verdict per paper direction.

    Without --out / --readme the Markdown goes to stdout. A result given explicitly must
    exist; a default one that does not is reported as not measured.
    """
    from clipguard.eval.report import default_paths, write_report

    cfg = _cfg(ctx)
    defaults = default_paths(cfg)
    given = {"ablation": ablation, "baselines": baselines, "flops": flops}
    paths = {}
    for kind, path in given.items():
        if path is None and defaults[kind].is_file():
            path = defaults[kind]
        elif path is None:
            console.print(f"[yellow]note:[/yellow] no {kind} results at {defaults[kind]}: that section says not measured")
        paths[kind] = path
    try:
        r = write_report(paths["ablation"], paths["baselines"], paths["flops"], out, readme, student)
    except _RCI_ERRORS as e:
        raise _rci_exit(e) from e
    if out is None and readme is None:
        typer.echo(r.markdown)
    if r.out_path is not None:
        console.print(f"report: {r.out_path}")
    if r.readme is not None:
        console.print(f"{r.readme}: {'results region updated' if r.readme_changed else 'already up to date'}")


def _registry_call(fn, *args, **kwargs):
    from clipguard.registry import RegistryError

    try:
        state = fn(*args, **kwargs)
    except RegistryError as e:
        console.print(f"[red]registry error:[/red] {e}")
        raise typer.Exit(1) from e
    if isinstance(state, list):
        payload = state
    else:
        payload = state.to_dict() if hasattr(state, "to_dict") else {k: v.to_dict() for k, v in state.items()}
    typer.echo(json.dumps(payload, indent=2, default=str))


@registry_app.command("show")
def registry_show(ctx: typer.Context) -> None:
    """Aliases (champion / challenger / previous) and gate tags of every model family."""
    from clipguard.registry import show

    _registry_call(show, cfg=_cfg(ctx))


@registry_app.command("gates")
def registry_gates(
    ctx: typer.Context,
    family: Annotated[str, typer.Argument(help="model family, e.g. student")] = "student",
) -> None:
    """Every registered version of FAMILY with its recorded gate decision and reasons (oldest first)."""
    from clipguard.registry.gate import gate_history

    _registry_call(gate_history, family, _cfg(ctx))


@registry_app.command("promote")
def registry_promote(
    ctx: typer.Context,
    family: Annotated[str, typer.Option(help="teacher / student / encoder / index")] = "student",
    version: Annotated[Optional[str], typer.Option(help="model version (default: the challenger)")] = None,
    force: Annotated[bool, typer.Option(help="promote even if the version did not pass its gate")] = False,
) -> None:
    """Move the `champion` alias to VERSION (the old champion becomes `previous`)."""
    from clipguard.registry import promote

    _registry_call(promote, family, version, force=force, cfg=_cfg(ctx))


@registry_app.command("rollback")
def registry_rollback(
    ctx: typer.Context,
    family: Annotated[str, typer.Option(help="teacher / student / encoder / index")] = "student",
) -> None:
    """Restore the `previous` champion."""
    from clipguard.registry import rollback

    _registry_call(rollback, family, cfg=_cfg(ctx))


# --------------------------------------------------------------------------- banks

banks_app = typer.Typer(
    no_args_is_help=True,
    help="Reference banks (banks.url): create, add, remove, disable / enable, rollout, list, audit.",
)
app.add_typer(banks_app, name="banks")

BankName = Annotated[str, typer.Argument(help="bank name")]
Actor = Annotated[Optional[str], typer.Option(help="who makes the change, recorded as cli:<actor> (default: your user name)")]


def _bank_call(ctx: typer.Context, operation: Callable[[BankStore], Any]) -> None:
    """Run ``operation`` on the configured bank database (``banks.url``) and print its result as JSON."""
    from clipguard.banks import BankError, BankStore

    store = BankStore.from_config(_cfg(ctx))
    try:
        result = operation(store)
    except (BankError, ValueError) as e:
        raise _rci_exit(e) from e
    finally:
        store.close()
    _echo([r.to_dict() for r in result] if isinstance(result, list) else result.to_dict())


def _cli_actor(actor: Optional[str]) -> str:
    import getpass

    return f"cli:{actor or getpass.getuser()}"


@banks_app.command("create")
def banks_create(
    ctx: typer.Context,
    name: BankName,
    kind: Annotated[str, typer.Option(help="rci-reference, violation or trend")],
    rollout: Annotated[float, typer.Option(help="share of queries the bank applies to (0..1)")] = 1.0,
    disabled: Annotated[bool, typer.Option(help="create it disabled")] = False,
    actor: Actor = None,
) -> None:
    """Create an empty bank."""
    _bank_call(ctx, lambda s: s.create_bank(name, kind, _cli_actor(actor), rollout=rollout, enabled=not disabled))


@banks_app.command("add")
def banks_add(
    ctx: typer.Context,
    name: BankName,
    csv_path: Annotated[Path, typer.Argument(help="CSV of ref_id,clip_id[,label] (an optional header row)")],
    actor: Actor = None,
) -> None:
    """Add references in bulk; ids already in the bank with the same clip and label are left as they are."""
    from clipguard.banks import read_references_csv

    try:
        references = read_references_csv(csv_path)
    except (OSError, ValueError) as e:
        raise _rci_exit(e) from e
    _bank_call(ctx, lambda s: s.add_references(name, references, _cli_actor(actor)))


@banks_app.command("remove")
def banks_remove(
    ctx: typer.Context,
    name: BankName,
    ref_ids: Annotated[list[str], typer.Argument(help="reference ids")],
    actor: Actor = None,
) -> None:
    """Remove references (kept in the database as removed: auditable; re-adding restores them)."""
    _bank_call(ctx, lambda s: s.remove_references(name, ref_ids, _cli_actor(actor)))


@banks_app.command("disable")
def banks_disable(
    ctx: typer.Context,
    name: BankName,
    ref_ids: Annotated[Optional[list[str]], typer.Argument(help="reference ids (none: disable the whole bank)")] = None,
    actor: Actor = None,
) -> None:
    """Disable references, or the whole bank when no reference is named."""
    if ref_ids:
        _bank_call(ctx, lambda s: s.disable_references(name, ref_ids, _cli_actor(actor)))
    else:
        _bank_call(ctx, lambda s: s.disable_bank(name, _cli_actor(actor)))


@banks_app.command("enable")
def banks_enable(
    ctx: typer.Context,
    name: BankName,
    ref_ids: Annotated[Optional[list[str]], typer.Argument(help="reference ids (none: enable the whole bank)")] = None,
    actor: Actor = None,
) -> None:
    """Enable references, or the whole bank when no reference is named."""
    if ref_ids:
        _bank_call(ctx, lambda s: s.enable_references(name, ref_ids, _cli_actor(actor)))
    else:
        _bank_call(ctx, lambda s: s.enable_bank(name, _cli_actor(actor)))


@banks_app.command("rollout")
def banks_rollout(
    ctx: typer.Context,
    name: BankName,
    fraction: Annotated[float, typer.Argument(help="share of queries (0..1), chosen by a stable hash of the query id")],
    actor: Actor = None,
) -> None:
    """Set the staged rollout of a bank."""
    _bank_call(ctx, lambda s: s.set_rollout(name, fraction, _cli_actor(actor)))


@banks_app.command("list")
def banks_list(
    ctx: typer.Context,
    name: Annotated[Optional[str], typer.Argument(help="a bank: list its references (default: list the banks)")] = None,
    removed: Annotated[bool, typer.Option(help="include removed references")] = False,
    offset: Annotated[int, typer.Option(min=0, help="references to skip")] = 0,
    limit: Annotated[int, typer.Option(min=1, help="references to show")] = 100,
) -> None:
    """The banks with their counts, or the references of one bank."""
    if name is None:
        _bank_call(ctx, lambda s: s.list_banks())
    else:
        _bank_call(ctx, lambda s: s.list_references(name, include_removed=removed, offset=offset, limit=limit))


@banks_app.command("audit")
def banks_audit(
    ctx: typer.Context,
    name: Annotated[Optional[str], typer.Argument(help="a bank (default: all)")] = None,
    ref: Annotated[Optional[str], typer.Option(help="only this reference id")] = None,
    actor: Annotated[Optional[str], typer.Option(help="only this actor (e.g. cli:alice, api:admin)")] = None,
    action: Annotated[Optional[str], typer.Option(help="only this action (add, remove, disable, set_rollout, ...)")] = None,
    limit: Annotated[int, typer.Option(min=1, help="rows to show")] = 100,
) -> None:
    """The audit log, newest first."""
    _bank_call(ctx, lambda s: s.audit_log(bank=name, ref_id=ref, actor=actor, action=action, limit=limit))


# --------------------------------------------------------------------------- monitoring

monitoring_app = typer.Typer(no_args_is_help=True, help="Drift watch: Evidently reports per traffic period.")
app.add_typer(monitoring_app, name="monitoring")


@monitoring_app.command("drift")
def monitoring_drift(
    ctx: typer.Context,
    reference: Annotated[Path, typer.Option(help="reference features folder (`features extract` output)")],
    reference_root: Annotated[
        Optional[Path], typer.Option(help="the reference's data root: its split (drift.reference_splits) and text")
    ] = None,
    current: Annotated[Optional[Path], typer.Option(help="traffic features folder (default: --reference)")] = None,
    current_root: Annotated[Optional[Path], typer.Option(help="the traffic's data root (default: --reference-root)")] = None,
    projection: Annotated[Optional[Path], typer.Option(help="a saved projection .npz (default: fit on the reference)")] = None,
    by: Annotated[str, typer.Option(help="period: day or hour (UTC)")] = "day",
    out: Annotated[Optional[Path], typer.Option(help="report folder (default WORK/drift)")] = None,
) -> None:
    """Drift timeline: one Evidently report per period of the traffic vs the training reference.

    Writes drift_<period>.html/.json, timeline.json and the projection under --out, prints
    the timeline, and the first drifted period (what the drift watch alerts on).
    """
    from rich.table import Table

    from clipguard.monitoring.drift import feature_timeline

    if by not in ("day", "hour"):
        raise typer.BadParameter(f"--by must be day or hour, got {by!r}")
    cfg = _cfg(ctx)
    out = out or _work(cfg, "drift")
    try:
        run = feature_timeline(
            reference,
            cfg.drift,
            out,
            reference_root=reference_root,
            current_features=current,
            current_root=current_root,
            projection=projection,
            by=by,  # type: ignore[arg-type]
        )
    except (FileNotFoundError, ValueError) as e:
        raise _rci_exit(e) from e
    splits = f"splits {','.join(run.reference_splits)}" if run.reference_splits else "all clips"
    table = Table(title=f"drift per {by}: reference {run.n_reference} clips ({splits}), share threshold {cfg.drift.drift_share}")
    for column in ("period", "clips", "reference", "share drifted", "drift", "drifted columns"):
        table.add_column(column, overflow="fold")
    for r in run.results:
        decision = "skipped" if r.skipped_reason else ("[red]DRIFT[/red]" if r.drifted else "no")
        table.add_row(
            str(r.period),
            str(r.n_current),
            str(r.n_reference),
            f"{r.share_drifted:.3f}",
            decision,
            ", ".join(r.drifted_columns) or (r.skipped_reason or "-"),
        )
    console.print(table)
    first = run.first_drift
    console.print(f"first drift: {first.period}" if first else "no period drifted")
    _echo(
        {
            "timeline": run.timeline_path,
            "projection": run.projection_path,
            "first_drift": first.period if first else None,
            "periods": [
                {
                    "period": r.period,
                    "n_current": r.n_current,
                    "share_drifted": r.share_drifted,
                    "drifted": r.drifted,
                    "html": r.html_path,
                }
                for r in run.results
            ],
        }
    )


# --------------------------------------------------------------------------- pipelines (KFP)

pipelines_app = typer.Typer(
    no_args_is_help=True, help="KFP pipelines: compile to IR YAML, run locally (kfp.local), schedule on a cluster."
)
app.add_typer(pipelines_app, name="pipelines")


def _pipelines_pkg():
    """The repository's KFP layer (``pipelines/``, installed beside ``clipguard`` by ``pip install``)."""
    import importlib

    try:
        return importlib.import_module("pipelines")
    except ImportError as e:
        console.print(
            f"[red]error:[/red] the clipguard KFP pipelines are not installed ({e}); "
            "install the clipguard distribution (`pip install .` from the checkout)"
        )
        raise typer.Exit(2) from e


def _pipeline_params(ctx: typer.Context, param: list[str] | None) -> dict:
    """``--param key=value`` plus the global ``--profile`` / ``--set`` as ``profile`` / ``overrides_json``."""
    _pipelines_pkg()
    from pipelines.run_local import parse_params

    try:
        params = parse_params(param or [])
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e
    if ctx.obj["profile"]:
        params.setdefault("profile", ctx.obj["profile"])
    if ctx.obj["overrides"]:
        merged = {**ctx.obj["overrides"], **json.loads(params.get("overrides_json") or "{}")}
        params["overrides_json"] = json.dumps(merged, sort_keys=True)
    return params


@pipelines_app.command("compile")
def pipelines_compile(
    names: Annotated[Optional[list[str]], typer.Argument(help="pipelines to compile (default: all)")] = None,
    out: Annotated[Optional[Path], typer.Option(help="output folder (default pipelines/compiled)")] = None,
) -> None:
    """Compile pipelines to KFP IR YAML (pipelines/compiled/<name>.yaml)."""
    pkg = _pipelines_pkg()
    from pipelines.compile import COMPILED_DIR, compile_all

    unknown = sorted(set(names or []) - set(pkg.PIPELINES))
    if unknown:
        raise typer.BadParameter(f"unknown pipeline(s) {', '.join(unknown)}; known: {', '.join(pkg.PIPELINES)}")
    for path in compile_all(out or COMPILED_DIR, names or None):
        typer.echo(str(path))


@pipelines_app.command("run")
def pipelines_run(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="data_prep / training / retraining / drift_watch")],
    param: Annotated[Optional[list[str]], typer.Option("--param", "-p", help="pipeline parameter key=value")] = None,
    pipeline_root: Annotated[Optional[Path], typer.Option(help="task outputs (default <work_dir>/kfp)")] = None,
    work_dir: Annotated[Optional[Path], typer.Option(help="MLflow / Feast / cache root (default: the config's)")] = None,
    cache: Annotated[bool, typer.Option(help="reuse outputs of identical earlier tasks")] = False,
    alert_on_failure: Annotated[
        bool,
        typer.Option(help="run as compiled, inside the exit handler that alerts (cfg.alerts) when the run fails; no outputs"),
    ] = False,
) -> None:
    """Run a pipeline on this machine with kfp.local (every step a subprocess of this Python)."""
    pkg = _pipelines_pkg()
    if name not in pkg.PIPELINES:
        raise typer.BadParameter(f"unknown pipeline {name!r}; known: {', '.join(pkg.PIPELINES)}")
    from pipelines.run_local import run_pipeline

    t0 = time.perf_counter()
    try:
        task = run_pipeline(
            name,
            _pipeline_params(ctx, param),
            pipeline_root=pipeline_root,
            work_dir=work_dir,
            enable_caching=cache,
            alert_on_failure=alert_on_failure,
        )
    except RuntimeError as e:
        console.print(f"[red]pipeline {name} failed:[/red] {e}")
        raise typer.Exit(1) from e
    from pipelines.run_local import describe_outputs

    for key, value in describe_outputs(task).items():
        typer.echo(f"{key}: {value}")
    console.print(f"pipeline {name} finished in {time.perf_counter() - t0:.1f} s")


@pipelines_app.command("schedule")
def pipelines_schedule(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="data_prep / training / retraining / drift_watch")],
    host: Annotated[str, typer.Option(help="Kubeflow Pipelines API endpoint")],
    cron: Annotated[str, typer.Option(help='crontab line (UTC), e.g. "0 3 * * *"')],
    param: Annotated[Optional[list[str]], typer.Option("--param", "-p", help="pipeline parameter key=value")] = None,
    experiment: Annotated[str, typer.Option(help="KFP experiment (created if missing)")] = "clipguard",
    package_dir: Annotated[
        Optional[Path], typer.Option(help="compiled packages (default pipelines/compiled; GPU cluster: pipelines/compiled/gpu)")
    ] = None,
) -> None:
    """Create a recurring run of the compiled pipeline on a KFP cluster."""
    _pipelines_pkg()
    from pipelines.compile import COMPILED_DIR
    from pipelines.schedule import create_schedule

    try:
        run = create_schedule(host, name, cron, _pipeline_params(ctx, param), experiment, package_dir=package_dir or COMPILED_DIR)
    except (KeyError, ValueError, FileNotFoundError) as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from e
    typer.echo(str(getattr(run, "recurring_run_id", run)))


@app.command("demo")
def demo(
    ctx: typer.Context,
    out: Annotated[Optional[Path], typer.Option(help="demo folder (default <work_dir>/demo)")] = None,
    seed: Annotated[Optional[int], typer.Option(help="corpus and training seed (default: the profile's)")] = None,
    verbose: Annotated[bool, typer.Option(help="pipeline task logs on the console, not in <out>/state/logs")] = False,
) -> None:
    """The whole loop locally: corpus -> training -> gate (and a refused degraded challenger)
    -> drift watch per day -> alert + retraining; prints a summary (pipelines/demo.py).

    Run with ``--profile demo`` (what ``make demo`` does) for the demo-sized corpus and epochs.
    """
    _pipelines_pkg()
    from pipelines.demo import run_demo

    try:
        run_demo(out, profile=ctx.obj["profile"] or "demo", overrides=ctx.obj["overrides"], seed=seed, verbose=verbose)
    except RuntimeError as e:
        console.print(f"[red]demo failed:[/red] {e}")
        raise typer.Exit(1) from e


@app.command("serve")
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP port")] = 3000,
) -> None:
    """Serve the RCI API (rci/score, rci/search, health) with BentoML in the foreground.

    ``--profile`` and ``--set`` become the service's bento arguments, e.g.
    ``clipguard --set rci.model_uri=runs/student --set serving.features_dir=runs/features serve``.
    """
    import os

    from clipguard.serving.launch import serve_command

    _cfg(ctx)  # refuse a bad configuration before BentoML starts
    cmd = serve_command({"profile": ctx.obj["profile"], **ctx.obj["overrides"]}, host, port)
    console.print(f"serving on http://{host}:{port} (POST /rci/score, /rci/search, /health)")
    os.execv(cmd[0], cmd)


reliability_app = typer.Typer(no_args_is_help=True, help="The reliability campaign: bad media through every stage.")
app.add_typer(reliability_app, name="reliability")


@reliability_app.command("run")
def reliability_run(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="report JSON")] = Path("benchmarks/results/reliability.json"),
    work: Annotated[Optional[Path], typer.Option(help="scratch folder, emptied first (default <work_dir>/reliability)")] = None,
    markdown: Annotated[Optional[Path], typer.Option(help="also write the outcome table as Markdown")] = None,
    quick: Annotated[bool, typer.Option(help="a 2-minute file instead of the one-hour file")] = False,
    decode_timeout: Annotated[float, typer.Option(help="media.decode_timeout_s the stages run under")] = 3.0,
    service: Annotated[bool, typer.Option(help="include the service's upload API (starts BentoML)")] = True,
    faults: Annotated[bool, typer.Option(help="load the service, kill a worker and change the champion mid-load")] = True,
) -> None:
    """Generate the bad-media suite (FFmpeg) and run every file through ingest, validation,
    feature extraction, ``rci score`` and the service's upload API with random models; then load
    the service, kill one of its workers and change the champion mid-load. Writes the outcome of
    every (case, stage), each stage's counts, the one-hour memory profile and the load's answers.
    Exits 1 when an outcome is not the defined one, a stage's counts do not add up, or an answer
    under load failed or was wrong."""
    import os
    import platform
    import sys

    from clipguard.reliability.campaign import markdown_table, run_campaign, write_report

    cfg = _cfg(ctx)
    overrides = {**ctx.obj["overrides"], "media.decode_timeout_s": decode_timeout}
    t0 = time.perf_counter()
    report = run_campaign(
        work or Path(cfg.work_dir) / "reliability", ctx.obj["profile"] or "local", overrides, quick, service, faults and service
    )
    d = report.to_dict()
    extra = {
        "command": " ".join(["clipguard", *sys.argv[1:]]),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0]},
        "seconds": round(time.perf_counter() - t0, 1),
    }
    write_report(report, out, extra)
    table = markdown_table(d)
    if markdown is not None:
        markdown.write_text(table)
    typer.echo(table)
    console.print(f"summary: {d['summary']} -> {out}")
    if d["faults"]:
        f = d["faults"]
        console.print(
            f"under load: {f['requests']} requests {f['statuses']}, {f['retried']} retried after the worker kill, "
            f"{f['failed']} failed, {f['wrong']} wrong; the new champion answered {f['first_new_version_s']} s after its promotion"
        )
    if not report.ok:
        console.print(f"[red]{len(report.undefined)} outcome(s) not the defined one, or counts that do not add up[/red]")
        raise typer.Exit(1)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
