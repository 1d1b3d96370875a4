"""Compile every pipeline to KFP IR YAML: ``python -m pipelines.compile [--target cpu|gpu] [--out DIR] [name ...]``.

The YAML in ``pipelines/compiled/`` (``--target cpu``) and ``pipelines/compiled/gpu/``
(``--target gpu``: the teacher steps on the GPU image with one GPU, see
``pipelines/resources.py``) is committed; ``tests/pipelines/test_compile.py`` fails when it
is stale. The base images come from ``CLIPGUARD_IMAGE`` / ``CLIPGUARD_GPU_IMAGE`` (see
``components/__init__.py``): compile the committed YAML without them set. The target is
read when the components are imported, so each target compiles in its own process.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipelines import PIPELINES, get_pipeline

COMPILED_DIR = Path(__file__).resolve().parent / "compiled"


def compile_pipeline(name: str, out_dir: Path | str = COMPILED_DIR) -> Path:
    """Compile pipeline ``name``, inside its failure-alert exit handler, to ``<out_dir>/<name>.yaml``
    and return the path."""
    from kfp import compiler

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.yaml"
    compiler.Compiler().compile(pipeline_func=get_pipeline(name, alert_on_failure=True), package_path=str(path))
    return path


def compile_all(out_dir: Path | str = COMPILED_DIR, names: list[str] | None = None) -> list[Path]:
    """Compile the named pipelines (default: all of :data:`pipelines.PIPELINES`)."""
    return [compile_pipeline(name, out_dir) for name in (names or list(PIPELINES))]


def target_dir(target: str) -> Path:
    """Where the committed YAML of a compile target lives."""
    return COMPILED_DIR if target == "cpu" else COMPILED_DIR / target


def main(argv: list[str] | None = None) -> int:
    import os

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=("cpu", "gpu"), default="cpu", help="the cluster the pipelines run on")
    parser.add_argument("names", nargs="*", help=f"pipelines to compile (default: all of {', '.join(PIPELINES)})")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default pipelines/compiled[/gpu])")
    args = parser.parse_args(argv)
    if "components" in sys.modules and sys.modules["components"].COMPILE_TARGET != args.target:
        parser.error("the components were imported for another target: compile each target in its own process")
    os.environ["CLIPGUARD_COMPILE_TARGET"] = args.target
    unknown = sorted(set(args.names) - set(PIPELINES))
    if unknown:
        parser.error(f"unknown pipeline(s) {', '.join(unknown)}; known: {', '.join(PIPELINES)}")
    for path in compile_all(args.out or target_dir(args.target), args.names or None):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
