"""The safetensors pyfunc package on its own: build, verify, load, predict (no MLflow store)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from clipguard.registry.pyfunc import (
    MANIFEST_FILE,
    WEIGHTS_FILE,
    ModelPackageError,
    build_model_dir,
    load_model_dir,
    resolve_loader,
)
from tests.registry.tiny_model import LOADER, make_tiny


def _build(tmp_path: Path, **extra) -> tuple[torch.nn.Module, Path, dict]:
    model, weights, config = make_tiny(tmp_path / "src", seed=0)
    manifest = build_model_dir(tmp_path / "pkg", family="student", weights_path=weights, config=config, loader=LOADER, **extra)
    return model, tmp_path / "pkg", manifest


def test_round_trip_predicts_like_the_original(tmp_path: Path):
    model, pkg, manifest = _build(tmp_path, extra_files={"vocab.txt": _text(tmp_path, "a\nb\n")})
    assert set(manifest["files"]) == {WEIGHTS_FILE, "config.json", "vocab.txt"}
    loaded = load_model_dir(pkg)
    assert not loaded.get_raw_model().training
    x = np.random.default_rng(1).normal(size=(3, 4)).astype(np.float32)
    expected = model(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(loaded.predict(x), expected, rtol=1e-6)
    np.testing.assert_allclose(loaded.predict(pd.DataFrame(x)), expected, rtol=1e-6)
    np.testing.assert_allclose(loaded.predict({"x": x}), expected, rtol=1e-6)


def test_content_digest_tracks_content(tmp_path: Path):
    _, _, first = _build(tmp_path / "a")
    _, _, same = _build(tmp_path / "b")
    assert first["content_digest"] == same["content_digest"]
    _, _, other = _build(tmp_path / "c", extra_files={"vocab.txt": _text(tmp_path, "x")})
    assert other["content_digest"] != first["content_digest"]


def test_tampered_or_incomplete_packages_are_refused(tmp_path: Path):
    _, pkg, _ = _build(tmp_path)
    weights = pkg / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(ModelPackageError, match="does not match its recorded SHA-256"):
        load_model_dir(pkg)
    (pkg / MANIFEST_FILE).unlink()
    with pytest.raises(ModelPackageError, match="not a clipguard model directory"):
        load_model_dir(pkg)


def test_loader_and_extra_file_validation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(ModelPackageError, match="must look like"):
        resolve_loader("tests.registry.tiny_model.TinyLinear")
    with pytest.raises(ModelPackageError, match="has no attribute 'Nope'"):
        resolve_loader("tests.registry.tiny_model:Nope")
    with pytest.raises(ModelPackageError, match="cannot import"):
        resolve_loader("clipguard.no_such_module:load")
    monkeypatch.delenv("CLIPGUARD_TRUSTED_LOADER_MODULES")
    with pytest.raises(ModelPackageError, match="not trusted"):
        resolve_loader(LOADER)
    monkeypatch.setenv("CLIPGUARD_TRUSTED_LOADER_MODULES", "tests.registry")
    with pytest.raises(ModelPackageError, match="plain file name"):
        _build(tmp_path, extra_files={"../escape.txt": _text(tmp_path, "x")})
    with pytest.raises(ModelPackageError, match="plain file name"):
        _build(tmp_path, extra_files={WEIGHTS_FILE: _text(tmp_path, "x")})


def _text(tmp_path: Path, content: str) -> Path:
    path = tmp_path / "extra.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    return path
