"""Embedding-cosine baseline, and the comparison of baselines with the student's report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clipguard.baselines import baseline_pair_scores, baseline_scores
from clipguard.data.schema import PAIR_COLUMNS, VALIDATED_DIR, arrow_schema
from clipguard.eval.baselines import compare_baselines
from clipguard.features.store_format import FEATURES_FILE


def _features(directory: Path, vectors: dict[str, np.ndarray]) -> Path:
    """A feature directory holding only what the embedding baseline reads."""
    directory.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "clip_id": list(vectors),
            "clip_embedding": pa.array([v.astype(np.float32) for v in vectors.values()], type=pa.list_(pa.float32())),
        }
    )
    pq.write_table(table, directory / FEATURES_FILE)
    return directory


def test_cosine_of_clip_embeddings(tmp_path, cfg):
    feats = _features(
        tmp_path / "features",
        {"a": np.array([1.0, 0.0, 0.0]), "a2": np.array([2.0, 0.1, 0.0]), "b": np.array([0.0, 1.0, 0.0])},
    )
    pairs = pd.DataFrame({"query_clip_id": ["a2", "b", "zzz"], "candidate_clip_id": ["a", "a", "a"]})
    df = baseline_pair_scores(tmp_path, pairs, cfg, "embedding", features_dir=feats, progress=False)
    assert df["score"].iloc[0] == pytest.approx(2.0 / np.sqrt(4.01), abs=1e-6)
    assert df["score"].iloc[1] == pytest.approx(0.0, abs=1e-6)
    assert df["score"].iloc[2] == 0.0 and df["error"].iloc[2].startswith("missing_features: query zzz")
    assert (df["error"].iloc[:2] == "").all()


def test_embedding_needs_features(tmp_path, cfg):
    pairs = pd.DataFrame({"query_clip_id": ["a"], "candidate_clip_id": ["b"]})
    with pytest.raises(ValueError, match="features_dir"):
        baseline_scores(tmp_path, pairs, cfg, "embedding", progress=False)


def _root_with_pairs(root: Path) -> Path:
    """Val and test pairs over clips c0..c7 (copies: c{i} ~ c{i+4}); corpus.json declares 'flip' held out."""
    rows = []
    for split in ("val", "test"):
        for i in range(4):
            rows.append((f"{split}-pos{i}", f"c{i}", f"c{i + 4}", 1, "visual", split, "flip" if i % 2 else "crop", bool(i % 2)))
            rows.append((f"{split}-neg{i}", f"c{i}", f"c{(i + 1) % 4 + 4}", 0, "none", split, "", False))
    pairs = pd.DataFrame(
        {
            "pair_id": [r[0] for r in rows],
            "query_clip_id": [r[1] for r in rows],
            "candidate_clip_id": [r[2] for r in rows],
            "label": [r[3] for r in rows],
            "reason": [r[4] for r in rows],
            "event_timestamp": pd.Timestamp("2026-11-02", tz="UTC"),
            "split": [r[5] for r in rows],
        }
    )
    table = pa.Table.from_pandas(pairs, schema=arrow_schema(PAIR_COLUMNS), preserve_index=False)
    table = table.append_column("edit_types", pa.array([r[6] for r in rows])).append_column(
        "heldout_edit", pa.array([r[7] for r in rows])
    )
    (root / VALIDATED_DIR).mkdir(parents=True)
    pq.write_table(table, root / VALIDATED_DIR / "pairs.parquet")
    (root / "corpus.json").write_text(json.dumps({"edit_types": {"train": ["crop"], "heldout": ["flip"]}}))
    return root


def test_compare_baselines_against_the_student_report(tmp_path, cfg):
    root = _root_with_pairs(tmp_path / "root")
    rng = np.random.default_rng(0)
    base = rng.standard_normal((4, 16))
    # copies are their source plus a little noise; the embedding of a flipped copy (odd i) points away
    vectors = {f"c{i}": base[i] for i in range(4)}
    vectors |= {f"c{i + 4}": -base[i] if i % 2 else base[i] + 0.1 * rng.standard_normal(16) for i in range(4)}
    feats = _features(tmp_path / "features", vectors)
    perfect = {"ap": 1.0, "r_at_p80": 1.0}
    student = tmp_path / "metrics_test.json"
    student.write_text(
        json.dumps(
            {
                "model": "student",
                "threshold": 0.5,
                "metrics": perfect,
                "subsets": {"all": perfect, "heldout_edit": perfect, "heldout_edit/flip": perfect},
            }
        )
    )
    report = compare_baselines(
        root,
        cfg,
        "test",
        methods=("embedding",),
        features_dir=feats,
        student_report=student,
        out_dir=tmp_path / "eval",
        progress=False,
    )
    emb = report["baselines"]["embedding"]
    assert report["heldout_edit_types"] == ["flip"]
    assert {"all", "heldout_edit", "heldout_edit/flip"} <= set(emb["subsets"])
    assert set(emb["vs_student"]) == {"all", "heldout_edit", "heldout_edit/flip"}
    assert emb["metrics"]["r_at_p80"] < 1.0  # the flipped copies rank below every non-copy
    assert emb["subsets"]["heldout_edit/flip"]["r_at_p80"] == 0.0
    assert emb["student_beats_baseline"] is True
    assert emb["vs_student"]["all"]["ap"]["student_higher"] is True
    assert (tmp_path / "eval" / "baselines_test.json").is_file()
    scores = pd.read_parquet(tmp_path / "eval" / "baseline_scores_test.parquet")
    assert len(scores) == 16 and set(scores["split"]) == {"val", "test"}
