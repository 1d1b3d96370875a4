"""The ``clipguard`` command line.

Global options choose the profile and override any config key::

    clipguard --profile gpu --set media.fps=2 data validate data/corpus

Heavy libraries are imported inside the commands, so ``clipguard --help`` is instant.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from clipguard.config import Config, load_config, parse_overrides

app = typer.Typer(no_args_is_help=True, add_completion=False, help="clipguard: multimodal video moderation MLOps.")
data_app = typer.Typer(no_args_is_help=True, help="Corpus generation, ingestion and the data contract.")
media_app = typer.Typer(no_args_is_help=True, help="Inspect and decode media files.")
config_app = typer.Typer(no_args_is_help=True, help="Show the resolved configuration.")
features_app = typer.Typer(no_args_is_help=True, help="Encoder pretraining, feature extraction, Feast.")
rci_app = typer.Typer(no_args_is_help=True, help="Reproduced-content identification: score pairs, search, index.")
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
    profile: Annotated[Optional[str], typer.Option(help="config profile (configs/<profile>.yaml)")] = None,
    set_: Annotated[
        Optional[list[str]], typer.Option("--set", help="override a config key: --set media.fps=2")
    ] = None,
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
    from clipguard.data.synth import generate_corpus

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
    metadata: Annotated[
        Optional[Path], typer.Option(help="CSV/Parquet keyed by video_uri: title, ocr, asr, labels, ...")
    ] = None,
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
            root, cfg, seeds=tuple(int(s) for s in seeds.split(",")), out_dir=out,
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
    from clipguard.features.store import build_store, materialize
    from clipguard.features.store_format import FEATURES_FILE

    cfg = _cfg(ctx)
    store = build_store(features / FEATURES_FILE, _work(cfg, cfg.feast.dir), cfg.feast)
    typer.echo(json.dumps(materialize(store).to_dict(), indent=2, default=str))


@features_app.command("training-set")
def features_training_set(
    ctx: typer.Context,
    features: Annotated[Path, typer.Argument(help="features folder of one encoder version")],
    root: Annotated[Path, typer.Option(help="validated data root (its pairs are the entity rows)")] = Path("data/corpus"),
    out: Annotated[Path, typer.Option(help="output Parquet")] = Path("runs/training_set.parquet"),
) -> None:
    """Point-in-time join of query/candidate features onto the labelled pairs (Feast)."""
    from clipguard.features.store import build_store, build_training_set
    from clipguard.features.store_format import FEATURES_FILE

    cfg = _cfg(ctx)
    store = build_store(features / FEATURES_FILE, _work(cfg, cfg.feast.dir), cfg.feast)
    typer.echo(json.dumps(build_training_set(root, store, out).to_dict(), indent=2, default=str))


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

    cfg = _cfg(ctx)
    r = score_pairs(pairs, out, cfg, model_uri=model, encoder_dir=encoder_dir, media_root=media_root)
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


def _registry_call(fn, *args, **kwargs):
    from clipguard.registry import RegistryError

    try:
        state = fn(*args, **kwargs)
    except RegistryError as e:
        console.print(f"[red]registry error:[/red] {e}")
        raise typer.Exit(1) from e
    payload = state.to_dict() if hasattr(state, "to_dict") else {k: v.to_dict() for k, v in state.items()}
    typer.echo(json.dumps(payload, indent=2, default=str))


@registry_app.command("show")
def registry_show(ctx: typer.Context) -> None:
    """Aliases (champion / challenger / previous) and gate tags of every model family."""
    from clipguard.registry import show

    _registry_call(show, cfg=_cfg(ctx))


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


# --------------------------------------------------------------------------- pipelines (KFP)

pipelines_app = typer.Typer(
    no_args_is_help=True, help="KFP pipelines: compile to IR YAML, run locally (kfp.local), schedule on a cluster."
)
app.add_typer(pipelines_app, name="pipelines")


def _pipelines_pkg():
    """The repository's ``pipelines`` package (it lives beside ``clipguard/``, not inside it)."""
    import importlib
    import sys

    from clipguard.config import REPO_ROOT

    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    try:
        return importlib.import_module("pipelines")
    except ImportError as e:
        console.print(f"[red]error:[/red] the pipelines package is not next to {REPO_ROOT / 'clipguard'}: {e}")
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
) -> None:
    """Run a pipeline on this machine with kfp.local (every step a subprocess of this Python)."""
    pkg = _pipelines_pkg()
    if name not in pkg.PIPELINES:
        raise typer.BadParameter(f"unknown pipeline {name!r}; known: {', '.join(pkg.PIPELINES)}")
    from pipelines.run_local import run_pipeline

    t0 = time.perf_counter()
    try:
        task = run_pipeline(
            name, _pipeline_params(ctx, param), pipeline_root=pipeline_root, work_dir=work_dir, enable_caching=cache
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
) -> None:
    """Create a recurring run of the compiled pipeline on a KFP cluster."""
    _pipelines_pkg()
    from pipelines.schedule import create_schedule

    try:
        run = create_schedule(host, name, cron, _pipeline_params(ctx, param), experiment)
    except (KeyError, ValueError, FileNotFoundError) as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from e
    typer.echo(str(getattr(run, "recurring_run_id", run)))


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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
