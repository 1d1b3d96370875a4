"""Atomic file writes and content fingerprints for encoder and feature artifacts.

A reader must never see half a file: every writer here writes a temporary sibling
(``.<name>.<pid>.tmp``) and renames it over the target, which is atomic on POSIX.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch costs ~2 s to import; the file helpers here do not need it
    import torch

TMP_SUFFIX = ".tmp"


def _tmp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}{TMP_SUFFIX}")


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` then rename ``tmp`` to ``path``; the temporary is removed on error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_path(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def link_or_copy(src: str | Path, dst: str | Path) -> None:
    """Hard-link ``src`` to ``dst`` (its folder created), copying only where a link cannot be
    made (another filesystem); usable as ``shutil.copytree``'s ``copy_function``."""
    import shutil

    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def write_json(path: str | Path, obj: Any) -> Path:
    """Atomically write ``obj`` as indented, key-sorted JSON."""
    text = json.dumps(obj, indent=2, sort_keys=True) + "\n"

    def write(p: Path) -> None:
        p.write_text(text)

    return atomic_write(path, write)


def save_tensors(path: str | Path, tensors: Mapping[str, torch.Tensor], metadata: dict[str, str] | None = None) -> Path:
    """Atomically write tensors (made contiguous) to a safetensors file."""
    from safetensors.torch import save_file

    data = {k: v.detach().contiguous() for k, v in tensors.items()}
    return atomic_write(path, lambda p: save_file(data, str(p), metadata=metadata))


def publish_tensor_dir(
    path: str | Path, tensors: Mapping[str, torch.Tensor], index: Any, tensors_file: str, index_file: str
) -> Path:
    """Write ``tensors`` and the JSON ``index`` into a temporary sibling directory, then rename
    it to ``path`` (atomic). When another process published ``path`` first, its copy is kept
    and ours removed; the rename error is raised only when ``path`` holds no index."""
    import shutil

    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}{TMP_SUFFIX}")
    shutil.rmtree(tmp, ignore_errors=True)
    save_tensors(tmp / tensors_file, tensors)
    (tmp / index_file).write_text(json.dumps(index))
    try:
        os.replace(tmp, path)
    except OSError:  # another process published the same directory first
        shutil.rmtree(tmp, ignore_errors=True)
        if not (path / index_file).is_file():
            raise
    return path


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_tmp(directory: str | Path) -> int:
    """Delete temporaries left in ``directory`` by crashed writers (dead pids); returns how many."""
    n = 0
    d = Path(directory)
    if d.is_dir():
        for p in d.glob(f".*{TMP_SUFFIX}"):
            pid = p.name[: -len(TMP_SUFFIX)].rsplit(".", 1)[-1]
            if pid.isdigit() and int(pid) != os.getpid() and pid_alive(int(pid)):
                continue
            p.unlink(missing_ok=True)
            n += 1
    return n


def config_hash(obj: Any, length: int = 12) -> str:
    """A short, stable hash of a JSON-serialisable object (keys sorted)."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def module_fingerprint(module: torch.nn.Module, length: int = 16) -> str:
    """A content hash of a module's state dict (names, shapes, dtypes and values)."""
    import torch

    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:length]


@functools.lru_cache(maxsize=8)
def directory_fingerprint(model_dir: str) -> str:
    """A short content hash of a model directory's configs, vocabularies and weights (cached per process)."""
    h = hashlib.sha256()
    root = Path(model_dir)
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.suffix in {".json", ".safetensors", ".txt", ".model"}:
            h.update(str(p.relative_to(root)).encode())
            with p.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()[:16]
