"""Package the RCI service as a bento for a registered model version (``bentoml build``).

:func:`build_bento` runs ``bentoml build`` with ``serving.bentofile`` (the checkout's
``bentofile.yaml``; its folder is the build context) in a
child process whose ``BENTOML_HOME`` is the bento store (default ``<work_dir>/bentoml``, or
``serving.bentoml_home``), labels the bento with the versions it was built for (registered
model and version, its training/data/encoder/index versions, the gate result) and returns
its tag. With ``export_to`` the bento is also exported as a ``.bento`` archive
(``bentoml export``), which is how a bento leaves a pipeline step on a cluster, whose
store is gone with its pod (``bentoml import`` reads it back).

The bento holds the service code, configs and policies, not the model: the service loads
``rci.model_uri`` (the registry champion by default) at start-up and on alias changes, so
the labels record which version was the target when it was packaged. Each call builds a
new bento version (BentoML versions are unique); a build takes ~10 s here.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from clipguard.config import Config, load_config
from clipguard.core.tracking import Lineage

log = logging.getLogger(__name__)

LABEL_PREFIX = "clipguard."
TAG_MARKER = "__tag__:"
"""``bentoml build -o tag`` prints ``__tag__:<name>:<version>``."""


class BentoBuildError(RuntimeError):
    """``bentoml build`` (or ``bentoml export``) failed; the message names the model and the reason."""


@dataclasses.dataclass(frozen=True)
class BentoBuild:
    """A built bento and what it was built for."""

    tag: str
    """``<name>:<version>`` in the store"""
    bentoml_home: str
    """the store (``BENTOML_HOME``): ``bentoml serve <tag>`` / ``bentoml containerize <tag>`` with it set"""
    path: str
    """the bento's directory in the store"""
    labels: dict[str, str]
    archive: str | None = None
    """the exported ``.bento`` archive, when one was asked for"""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def bentoml_home(cfg: Config | None = None) -> Path:
    """The bento store: ``serving.bentoml_home``, else ``<work_dir>/bentoml`` (absolute)."""
    cfg = cfg or load_config()
    home = cfg.serving.bentoml_home or Path(cfg.work_dir) / "bentoml"
    return Path(home).expanduser().absolute()


def model_labels(family: str, version: str | int | None, cfg: Config) -> dict[str, str]:
    """Bento labels of a registered version (``version`` None: the ``champion``).

    Raises:
        UnknownFamilyError / UnknownVersionError: no such family or version.
        BentoBuildError: ``version`` is None and the family has no champion.
    """
    from clipguard.registry.gate import ALIAS_CHAMPION, TAG_GATE
    from clipguard.registry.versions import get_model_version, model_aliases, registered_model_name, registry_client

    name = registered_model_name(family, cfg)
    client = registry_client(cfg)
    if version is None or str(version) == "":
        version = model_aliases(client, name).get(ALIAS_CHAMPION)
        if version is None:
            raise BentoBuildError(f"cannot package {name}: it has no {ALIAS_CHAMPION} and no version was given")
    mv = get_model_version(client, name, version)
    tags = mv.tags or {}
    lineage = {k: v for k, v in dataclasses.asdict(Lineage.from_tags(tags)).items() if v}
    labels = {
        "model": name,
        "model_family": family,
        "registry_version": str(mv.version),
        **lineage,
        "gate": tags.get(TAG_GATE, "not gated"),
    }
    return {f"{LABEL_PREFIX}{k}": str(v) for k, v in labels.items()}


def _run(cmd: list[str], home: Path, what: str, timeout_s: float, cwd: Path | None = None) -> str:
    env = {**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "True"}
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as e:
        raise BentoBuildError(f"{what}: `bentoml {cmd[3]}` did not finish within {timeout_s:.0f} s") from e
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout or "").strip().splitlines()[-15:])
        raise BentoBuildError(f"{what}: `bentoml {cmd[3]}` exited with code {proc.returncode}:\n{tail}")
    return proc.stdout


def build_bento(
    family: str = "student",
    version: str | int | None = None,
    *,
    cfg: Config | None = None,
    home: str | Path | None = None,
    bentofile: str | Path | None = None,
    labels: Mapping[str, str] | None = None,
    export_to: str | Path | None = None,
    timeout_s: float = 600.0,
) -> BentoBuild:
    """Build the service's bento for registered ``version`` of ``family`` (None: the champion).

    Args:
        home: the bento store (``BENTOML_HOME``); default :func:`bentoml_home`.
        bentofile: the build file (default ``serving.bentofile``: ``bentofile.yaml`` of the
            current directory); its folder is the build context its ``include`` paths are
            anchored at (the source checkout).
        labels: extra labels, merged over the model's.
        export_to: a folder to write ``<name>-<version>.bento`` into (``bentoml export``).

    Raises:
        UnknownFamilyError / UnknownVersionError: no such registered model version.
        FileNotFoundError: ``bentofile`` does not exist.
        BentoBuildError: no champion to package, or ``bentoml build``/``export`` failed or
            timed out (the message holds the end of its output).
    """
    cfg = cfg or load_config()
    bentofile = Path(bentofile if bentofile is not None else cfg.serving.bentofile).absolute()
    if not bentofile.is_file():
        raise FileNotFoundError(f"bentofile {bentofile} not found: build from the clipguard checkout, or set serving.bentofile")
    store = Path(home).expanduser().absolute() if home is not None else bentoml_home(cfg)
    store.mkdir(parents=True, exist_ok=True)
    all_labels = {**model_labels(family, version, cfg), **(labels or {})}
    what = f"packaging {all_labels[LABEL_PREFIX + 'model']} v{all_labels[LABEL_PREFIX + 'registry_version']}"

    cmd = [sys.executable, "-m", "bentoml", "build", "-f", str(bentofile), "-o", "tag"]
    for key, value in all_labels.items():
        cmd += ["--label", f"{key}={value}"]
    out = _run([*cmd, str(bentofile.parent)], store, what, timeout_s, cwd=bentofile.parent)
    tags = [line.split(TAG_MARKER, 1)[1].strip() for line in out.splitlines() if TAG_MARKER in line]
    if not tags:
        raise BentoBuildError(f"{what}: `bentoml build` printed no bento tag:\n{out[-2000:]}")
    tag = tags[-1]
    name, _, bento_version = tag.partition(":")
    archive = None
    if export_to is not None:
        target = Path(export_to).absolute()
        target.mkdir(parents=True, exist_ok=True)
        archive_path = target / f"{name}-{bento_version}.bento"
        _run([sys.executable, "-m", "bentoml", "export", tag, str(archive_path)], store, what, timeout_s)
        archive = str(archive_path)
    build = BentoBuild(
        tag=tag,
        bentoml_home=str(store),
        path=str(store / "bentos" / name / bento_version),
        labels=all_labels,
        archive=archive,
    )
    log.info("%s: bento %s in %s", what, tag, store)
    return build
