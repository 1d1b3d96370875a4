"""The drift components' bodies (``component.python_func``) on the miniature corpus: with the
data roots the reference is the train split and the text groups are compared."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from components.drift_check.component import drift_check
from components.fit_drift_projection.component import fit_drift_projection
from tests.monitoring.conftest import MiniCorpus


class _Artifact:
    """What a KFP artifact offers a component body: ``path``, ``metadata``, ``log_metric``."""

    def __init__(self, path: Path, metadata: dict[str, Any] | None = None) -> None:
        self.path = str(path)
        self.metadata = dict(metadata or {})
        self.metrics: dict[str, float] = {}

    def log_metric(self, name: str, value: float) -> None:
        self.metrics[name] = value


def _check(corpus: MiniCorpus, tmp_path: Path, *, roots: bool) -> tuple[bool, dict, _Artifact]:
    projection = _Artifact(tmp_path / "projection.npz")
    root = _Artifact(corpus.root) if roots else None
    fit_drift_projection.python_func(reference=_Artifact(corpus.features), projection=projection, root=root)
    result, metrics = _Artifact(tmp_path / "result"), _Artifact(tmp_path / "metrics")
    drifted = drift_check.python_func(
        reference=_Artifact(corpus.features),
        current=_Artifact(corpus.trend_features),
        projection=projection,
        report=_Artifact(tmp_path / "report.html"),
        result=result,
        metrics=metrics,
        reference_root=root,
        current_root=_Artifact(corpus.root) if roots else None,
    )
    decision = json.loads((tmp_path / "result" / "result.json").read_text())
    return drifted, {**decision, "n_fit": projection.metadata["n_fit"]}, metrics


def test_with_roots_the_train_split_and_the_text_are_compared(corpus: MiniCorpus, tmp_path: Path) -> None:
    drifted, decision, metrics = _check(corpus, tmp_path, roots=True)
    train = pd.read_parquet(corpus.root / "validated" / "clips.parquet").query("split == 'train'")
    assert decision["n_fit"] == len(train) == decision["n_reference"]
    assert drifted and decision["drifted"]
    assert {"new_hashtags", "hashtag_count"} <= set(decision["drifted_columns"])
    assert metrics.metrics["n_reference"] == len(train) and metrics.metrics["share_drifted"] > 0
    assert (tmp_path / "report.html").is_file()


def test_without_roots_whole_tables_and_vectors_only(corpus: MiniCorpus, tmp_path: Path) -> None:
    _, decision, _ = _check(corpus, tmp_path, roots=False)
    every = len(pd.read_parquet(corpus.root / "validated" / "clips.parquet"))
    trend_day = len(pd.read_parquet(corpus.trend_features / "e123" / "clip_features.parquet"))
    assert decision["n_fit"] == every
    assert decision["n_reference"] == every - trend_day  # the window's own clips are left out
    assert {info["group"] for info in decision["per_column"].values()} == {"visual", "text_embedding", "audio"}
