"""A generic MLflow pyfunc flavor for safetensors models: weights + JSON config + a loader.

A registered clipguard model is a directory in the Hugging Face ``save_pretrained``
layout, stored as the ``data/`` of an MLflow pyfunc model::

    model.safetensors     the weights (safetensors: no code runs when they are read)
    config.json           the model's own configuration
    clipguard_model.json  the manifest: family, loader, file digests
    <extra files>         anything else the loader reads (a FAISS index, a vocabulary)

The manifest names a **loader**, an import path ``"package.module:Object.attribute"``
such as ``"clipguard.models.matchlite:MatchLite.from_pretrained"``: a callable taking the
directory (``str``) and returning the model. MLflow loads the model through this module
(``loader_module="clipguard.registry.pyfunc"``, its ``_load_pyfunc``), so loading
unpickles nothing and runs no code stored with the model: it imports the installed
loader, checks the file digests, and calls it. The loader's module must be trusted:
by default only modules under ``clipguard`` may be named; the environment variable
``CLIPGUARD_TRUSTED_LOADER_MODULES`` (comma-separated module prefixes) extends the list.

``mlflow.pyfunc.load_model("models:/clipguard-student@champion")`` returns a
``PyFuncModel`` whose ``predict`` runs :meth:`SafetensorsPyfunc.predict` and whose
``get_raw_model()`` returns the object the loader built (e.g. the ``torch.nn.Module``).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

WEIGHTS_FILE = "model.safetensors"
"""Name of the weights inside a model directory."""

CONFIG_FILE = "config.json"
"""Name of the model's JSON configuration inside a model directory."""

MANIFEST_FILE = "clipguard_model.json"
"""Name of the manifest (family, loader, digests) inside a model directory."""

MANIFEST_FORMAT = 1
"""Version of the manifest layout; bumped on incompatible changes."""

TRUSTED_LOADERS_ENV = "CLIPGUARD_TRUSTED_LOADER_MODULES"
"""Environment variable: extra module prefixes (comma-separated) a loader may come from."""

DEFAULT_TRUSTED_MODULES = ("clipguard",)

_RESERVED_FILES = frozenset({WEIGHTS_FILE, CONFIG_FILE, MANIFEST_FILE})


class ModelPackageError(ValueError):
    """A model directory, its manifest or its loader is invalid."""


def file_sha256(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def trusted_loader_modules() -> tuple[str, ...]:
    """Module prefixes a loader may be imported from (defaults + ``$CLIPGUARD_TRUSTED_LOADER_MODULES``)."""
    extra = [p.strip() for p in os.environ.get(TRUSTED_LOADERS_ENV, "").split(",") if p.strip()]
    return (*DEFAULT_TRUSTED_MODULES, *extra)


def resolve_loader(spec: str) -> Callable[[str], Any]:
    """Import the loader named by ``"package.module:Object.attribute"``.

    Raises:
        ModelPackageError: malformed spec, a module outside the trusted prefixes, an
            import failure, a missing attribute, or a non-callable target.
    """
    module_name, sep, qualname = spec.partition(":")
    if not sep or not module_name or not qualname:
        raise ModelPackageError(f"loader {spec!r} must look like 'package.module:Object.attribute'")
    trusted = trusted_loader_modules()
    if not any(module_name == p or module_name.startswith(p + ".") for p in trusted):
        raise ModelPackageError(
            f"loader module {module_name!r} is not trusted (allowed prefixes: {', '.join(trusted)}; "
            f"extend with ${TRUSTED_LOADERS_ENV})"
        )
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as e:
        raise ModelPackageError(f"loader {spec!r}: cannot import {module_name!r}: {e}") from e
    for part in qualname.split("."):
        try:
            target = getattr(target, part)
        except AttributeError as e:
            raise ModelPackageError(f"loader {spec!r}: {module_name} has no attribute {qualname!r}") from e
    if not callable(target):
        raise ModelPackageError(f"loader {spec!r} is not callable")
    return target


def _check_safetensors(path: Path) -> None:
    from safetensors import safe_open

    if not path.is_file():
        raise ModelPackageError(f"weights file {path} does not exist")
    try:
        with safe_open(str(path), framework="np"):
            pass
    except Exception as e:  # safetensors raises its own error types for bad headers
        raise ModelPackageError(f"weights file {path} is not a valid safetensors file: {e}") from e


def build_model_dir(
    dst: str | Path,
    *,
    family: str,
    weights_path: str | Path,
    config: Mapping[str, Any],
    loader: str,
    extra_files: Mapping[str, str | Path] | None = None,
) -> dict[str, Any]:
    """Write a model directory (weights, config, extra files, manifest) into ``dst``.

    The loader is resolved once here, so a typo fails at registration and not at serving.

    Returns:
        The manifest written to ``clipguard_model.json``; its ``content_digest`` changes
        exactly when the weights, config, loader or an extra file changes.

    Raises:
        ModelPackageError: invalid weights, loader, or extra-file name.
    """
    weights_path = Path(weights_path)
    _check_safetensors(weights_path)
    resolve_loader(loader)
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(weights_path, dst / WEIGHTS_FILE)
    config_text = json.dumps(dict(config), sort_keys=True, indent=2)
    (dst / CONFIG_FILE).write_text(config_text)

    files = {WEIGHTS_FILE: file_sha256(dst / WEIGHTS_FILE), CONFIG_FILE: file_sha256(dst / CONFIG_FILE)}
    for name, src in sorted((extra_files or {}).items()):
        if name in _RESERVED_FILES or Path(name).name != name or name.startswith("."):
            raise ModelPackageError(f"extra file name {name!r} must be a plain file name other than {sorted(_RESERVED_FILES)}")
        if not Path(src).is_file():
            raise ModelPackageError(f"extra file {name!r}: {src} does not exist")
        shutil.copyfile(src, dst / name)
        files[name] = file_sha256(dst / name)

    content = json.dumps({"loader": loader, "files": files}, sort_keys=True).encode()
    manifest = {
        "format": MANIFEST_FORMAT,
        "family": family,
        "loader": loader,
        "files": files,
        "content_digest": hashlib.sha256(content).hexdigest(),
    }
    (dst / MANIFEST_FILE).write_text(json.dumps(manifest, sort_keys=True, indent=2))
    return manifest


def read_manifest(model_dir: str | Path) -> dict[str, Any]:
    """Read and check the manifest of a model directory, and verify every file's digest.

    Raises:
        ModelPackageError: missing/unknown manifest, missing file, or digest mismatch.
    """
    model_dir = Path(model_dir)
    path = model_dir / MANIFEST_FILE
    if not path.is_file():
        raise ModelPackageError(f"{model_dir} is not a clipguard model directory: no {MANIFEST_FILE}")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ModelPackageError(f"{path}: unsupported manifest format {manifest.get('format')!r}")
    for name, expected in manifest["files"].items():
        file = model_dir / name
        if not file.is_file():
            raise ModelPackageError(f"{model_dir}: {name} is missing")
        if file_sha256(file) != expected:
            raise ModelPackageError(f"{model_dir}: {name} does not match its recorded SHA-256 (corrupt or altered)")
    return manifest


def _is_torch_module(obj: Any) -> bool:
    torch = sys.modules.get("torch")  # a torch model means torch is imported already
    return torch is not None and isinstance(obj, torch.nn.Module)


def _to_tensor(value: Any, dtype: Any) -> Any:
    import torch

    array = value.to_numpy() if hasattr(value, "to_numpy") else np.asarray(value)
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    return tensor.to(dtype) if tensor.is_floating_point() else tensor


def _to_numpy(output: Any) -> Any:
    import torch

    if isinstance(output, torch.Tensor):
        return output.detach().cpu().numpy()
    if isinstance(output, Mapping):
        return {k: _to_numpy(v) for k, v in output.items()}
    if isinstance(output, (tuple, list)):
        return [_to_numpy(v) for v in output]
    return output


class SafetensorsPyfunc:
    """What ``_load_pyfunc`` returns: the loaded model behind MLflow's pyfunc interface.

    ``predict`` dispatches on what the loader built:

    - an object with a ``predict`` method: ``obj.predict(model_input)`` (``params=`` is
      passed along when given);
    - a ``torch.nn.Module`` (put in eval mode): a DataFrame or array becomes one tensor,
      a mapping of arrays becomes keyword tensors; floating inputs are cast to the
      module's parameter dtype; runs under ``torch.inference_mode``; tensors in the
      output (also inside tuples/dicts) come back as numpy arrays;
    - any other callable: ``obj(model_input)``.
    """

    def __init__(self, model: Any, config: dict[str, Any], manifest: dict[str, Any]):
        self.model = model
        self.config = config
        self.manifest = manifest

    def get_raw_model(self) -> Any:
        """The object the loader returned (``PyFuncModel.get_raw_model()`` forwards here)."""
        return self.model

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        """Score ``model_input`` with the loaded model (see the class docstring)."""
        predict = getattr(self.model, "predict", None)
        if callable(predict):
            return predict(model_input) if params is None else predict(model_input, params=params)
        if _is_torch_module(self.model):
            import torch

            param = next(self.model.parameters(), None)
            dtype = param.dtype if param is not None else torch.float32
            with torch.inference_mode():
                if isinstance(model_input, Mapping):
                    out = self.model(**{k: _to_tensor(v, dtype) for k, v in model_input.items()})
                else:
                    out = self.model(_to_tensor(model_input, dtype))
            return _to_numpy(out)
        if callable(self.model):
            return self.model(model_input)
        raise TypeError(
            f"loader {self.manifest['loader']!r} returned a {type(self.model).__name__}, which has no "
            "predict method, is not a torch module and is not callable"
        )


def load_model_dir(model_dir: str | Path) -> SafetensorsPyfunc:
    """Load a model directory written by :func:`build_model_dir` (digests checked first)."""
    manifest = read_manifest(model_dir)
    loader = resolve_loader(manifest["loader"])
    config = json.loads((Path(model_dir) / CONFIG_FILE).read_text())
    model = loader(str(model_dir))
    if _is_torch_module(model):
        model.eval()
    return SafetensorsPyfunc(model, config, manifest)


def _load_pyfunc(data_path: str, model_config: dict[str, Any] | None = None) -> SafetensorsPyfunc:
    """MLflow's entry point for ``loader_module="clipguard.registry.pyfunc"``.

    ``model_config`` (MLflow's load-time override) is accepted and ignored: the model's
    configuration is its ``config.json``, covered by the manifest's digests.
    """
    return load_model_dir(data_path)
