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
registry_app = typer.Typer(no_args_is_help=True, help="Model registry: show, promote, rollback (MLflow aliases).")
app.add_typer(data_app, name="data")
app.add_typer(media_app, name="media")
app.add_typer(config_app, name="config")
app.add_typer(registry_app, name="registry")

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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
