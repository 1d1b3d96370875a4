"""Drift reports: projection round trip, no alert on ordinary days, alert on the trend day."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clipguard.config import DriftConfig
from clipguard.monitoring.drift import (
    Projection,
    _feature_frame,
    _novelty_frames,
    _plan_groups,
    drift_report,
    drift_timeline,
    fit_projection,
    select_reference,
    with_manifest,
)
from tests.monitoring.conftest import SMALL_DAY, TREND_DAY, Timeline

ORDINARY_DAYS = ("2026-11-01", "2026-11-02")


def test_projection_round_trip(tmp_path: Path, reference_df: pd.DataFrame, traffic_df: pd.DataFrame) -> None:
    projection = fit_projection(reference_df, dims=3)
    path = projection.save(tmp_path / "projection.npz")
    loaded = Projection.load(path)
    assert loaded.n_fit == len(reference_df)
    assert sorted(loaded.parts) == ["clip_embedding", "text_pooled"]
    for column in ("clip_embedding", "text_pooled"):
        before = projection.transform(traffic_df, column)
        after = loaded.transform(traffic_df, column)
        assert list(after.columns) == before.columns.tolist()
        np.testing.assert_array_equal(after.to_numpy(), before.to_numpy())
    assert list(loaded.transform(traffic_df, "clip_embedding").columns) == [
        "emb_pc0",
        "emb_pc1",
        "emb_pc2",
        "emb_resid",
    ]
    with np.load(path, allow_pickle=False) as npz:  # no pickled objects inside
        assert npz["clip_embedding.components"].shape == (3, 128)


def test_ordinary_days_do_not_drift(timeline: Timeline) -> None:
    for day in ORDINARY_DAYS:
        result = timeline.day(day)
        assert not result.drifted, (day, result.share_drifted, result.drifted_columns)
        assert result.share_drifted < result.drift_share_threshold
        assert result.n_current == 250


def test_trend_day_drifts_with_its_columns(timeline: Timeline) -> None:
    result = timeline.day(TREND_DAY)
    assert result.drifted
    assert result.share_drifted >= result.drift_share_threshold
    # the new visual cluster, the hashtag phrase (new words), the louder sound and the higher score
    assert {"emb_resid", "hashtag_count", "new_words", "new_hashtags", "audio_rms", "score"} <= set(result.drifted_columns)
    assert {result.per_column[c]["group"] for c in result.drifted_columns} >= {
        "visual",
        "text_stats",
        "text_novelty",
        "audio",
        "score",
    }
    assert result.per_column["hashtag_count"]["method"] == "psi"  # constant in the reference
    assert result.per_column["emb_resid"]["method"] == "wasserstein"
    assert result.n_reference == 800
    first = next(r for r in timeline.results if r.drifted)
    assert first.period == TREND_DAY


def test_small_period_is_not_evaluated(timeline: Timeline) -> None:
    result = timeline.results[0]
    assert result.period == SMALL_DAY
    assert not result.drifted
    assert result.n_current == 20
    assert "min_current_rows" in (result.skipped_reason or "")
    assert result.html_path is None and result.json_path is None


def test_report_files_written(timeline: Timeline) -> None:
    for day in (*ORDINARY_DAYS, TREND_DAY):
        result = timeline.day(day)
        assert result.html_path is not None and result.json_path is not None
        html, js = Path(result.html_path), Path(result.json_path)
        assert html.parent == timeline.out_dir and html.name == f"drift_{day}.html"
        assert "<html" in html.read_text()[:2000].lower()
        assert json.loads(js.read_text())["metrics"]
    summary = json.loads((timeline.out_dir / "timeline.json").read_text())
    assert [s["period"] for s in summary] == [r.period for r in timeline.results]
    assert summary[-1]["drifted"] is True


def test_decision_matches_the_evidently_report(timeline: Timeline) -> None:
    for day in (*ORDINARY_DAYS, TREND_DAY):
        result = timeline.day(day)
        assert result.json_path is not None
        report = json.loads(Path(result.json_path).read_text())
        (count,) = [m for m in report["metrics"] if m["metric_name"].startswith("DriftedColumnsCount(")]
        assert result.share_drifted == pytest.approx(count["value"]["share"])
        assert len(result.drifted_columns) == count["value"]["count"]
        # Evidently's own test on the share ("Less than drift_share") fails exactly on drift
        (share_test,) = [t for t in report["tests"] if t["metric_config"]["metric_id"] == count["id"]]
        assert (share_test["status"] == "FAIL") == result.drifted
        flags = {}
        for metric in report["metrics"]:
            if metric["metric_name"].startswith("ValueDrift("):
                (test,) = [t for t in report["tests"] if t["metric_config"]["metric_id"] == metric["id"]]
                flags[metric["config"]["column"]] = test["status"] == "FAIL"
                assert result.per_column[metric["config"]["column"]]["score"] == pytest.approx(metric["value"])
        assert flags == {c: info["drifted"] for c, info in result.per_column.items()}


def test_threshold_decides_on_the_reported_share(
    tmp_path: Path, reference_df: pd.DataFrame, traffic_df: pd.DataFrame, projection: Projection
) -> None:
    """Moving only the drift-share threshold across the reported share flips the decision."""
    day = traffic_df[traffic_df["event_timestamp"].dt.strftime("%Y-%m-%d") == TREND_DAY]
    ref, cur = (df.drop(columns=["score", "text_pooled"]) for df in (reference_df, day))
    cfg = DriftConfig(groups=("text_stats", "score"))  # score: absent from both frames, skipped
    base = drift_report(ref, cur, projection, cfg, tmp_path, name="base")
    assert base.drifted
    assert set(base.per_column) == {"title_tokens", "ocr_tokens", "asr_tokens", "hashtag_count", "hashtag_share"}
    strict = drift_report(
        ref, cur, projection, cfg.model_copy(update={"drift_share": base.share_drifted + 0.01}), tmp_path, name="strict"
    )
    assert not strict.drifted
    assert strict.share_drifted == pytest.approx(base.share_drifted)
    assert strict.drifted_columns == base.drifted_columns


def test_per_column_overrides_reach_evidently(
    tmp_path: Path, reference_df: pd.DataFrame, traffic_df: pd.DataFrame, projection: Projection
) -> None:
    day = traffic_df[traffic_df["event_timestamp"].dt.strftime("%Y-%m-%d") == TREND_DAY]
    cfg = DriftConfig(groups=("audio",), per_column_stattest={"audio_rms": "ks"}, per_column_threshold={"audio_rms": 0.01})
    result = drift_report(reference_df, day, projection, cfg, tmp_path)
    assert result.per_column["audio_rms"]["method"] == "ks"
    assert result.per_column["audio_rms"]["threshold"] == 0.01
    assert result.per_column["audio_rms"]["drifted"]  # a tiny p-value: K-S drift is flagged below the threshold
    assert result.per_column["has_audio"]["method"] == "psi"


def test_text_statistics() -> None:
    df = pd.DataFrame(
        {
            "clip_id": ["a", "b"],
            "clip_embedding": [np.zeros(4), np.ones(4)],
            "title": ["cats #cute #spinzchallenge day 2", None],
            "ocr": ["", "scan me"],
            "asr": ["hello there", "one two three"],
        }
    )
    plan = _plan_groups(df, df, ("text_stats",))
    features, groups = _feature_frame(df, Projection(parts={}, n_fit=0), plan)
    assert features["title_tokens"].tolist() == [5.0, 0.0]
    assert features["hashtag_count"].tolist() == [2.0, 0.0]
    assert features["hashtag_share"].tolist() == [pytest.approx(2 / 7), 0.0]
    assert set(groups.values()) == {"text_stats"}


def test_missing_columns_are_named(reference_df: pd.DataFrame, projection: Projection, tmp_path: Path) -> None:
    current = reference_df.head(100)
    with pytest.raises(ValueError, match=r"current_df is missing columns: \['clip_embedding'\]"):
        drift_report(reference_df, current.drop(columns=["clip_embedding"]), projection, DriftConfig(), tmp_path)
    with pytest.raises(ValueError, match=r"'text_stats': current_df is missing columns \['ocr', 'title'\]"):
        drift_report(reference_df, current.drop(columns=["title", "ocr"]), projection, DriftConfig(), tmp_path)
    with pytest.raises(ValueError, match=r"'score': reference_df is missing columns \['score'\]"):
        drift_report(reference_df.drop(columns=["score"]), current, projection, DriftConfig(), tmp_path)
    with pytest.raises(ValueError, match="traffic_df is missing columns"):
        drift_timeline(reference_df, current.drop(columns=["event_timestamp"]), projection, DriftConfig(), tmp_path)


def test_bad_embeddings_name_the_clips(reference_df: pd.DataFrame, projection: Projection, tmp_path: Path) -> None:
    current = reference_df.head(100).copy()
    current.at[3, "clip_embedding"] = np.zeros(64, np.float32)
    clip = current.clip_id[3]
    with pytest.raises(ValueError, match=rf"clip_embedding: 1 rows do not hold 128 values \(clip_id \['{clip}'\]"):
        drift_report(reference_df, current, projection, DriftConfig(), tmp_path)
    current.at[3, "clip_embedding"] = np.full(128, np.nan, np.float32)
    with pytest.raises(ValueError, match=rf"NaN/inf \(clip_id \['{clip}'\]"):
        drift_report(reference_df, current, projection, DriftConfig(), tmp_path)


def test_no_usable_group_is_an_error(reference_df: pd.DataFrame, projection: Projection, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"none of the configured feature groups \['score'\]"):
        frame = reference_df.drop(columns=["score"])
        drift_report(frame, frame, projection, DriftConfig(groups=("score",)), tmp_path)


def test_projection_needs_enough_clips(reference_df: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="cannot fit 8 components on 5 clips"):
        fit_projection(reference_df.head(5), dims=8)


def test_new_words_leave_each_reference_clip_out() -> None:
    """A word is new to a reference clip when no *other* reference clip uses it; to a
    current clip when no reference clip does. Digits never count; hashtags are words too."""
    reference = pd.DataFrame(
        {
            "title": ["cats #cute part 1", "cats #cute part 2", "dogs #rare"],
            "ocr": ["", None, "cats"],
            "asr": ["", "", ""],
        }
    )
    current = pd.DataFrame(
        {"title": ["cats #cute #spinz", "dogs part 99", "Spin to WIN"], "ocr": ["", "", ""], "asr": ["", "", "cats"]}
    )
    ref_new, cur_new = _novelty_frames(reference, current, ("title", "ocr", "asr"))
    assert ref_new["new_words"].tolist() == [0.0, 0.0, 2.0]  # "dogs", "#rare": only the third clip has them
    assert ref_new["new_hashtags"].tolist() == [0.0, 0.0, 1.0]
    assert cur_new["new_words"].tolist() == [1.0, 0.0, 3.0]  # "#spinz"; "dogs" is known; spin/to/win
    assert cur_new["new_hashtags"].tolist() == [1.0, 0.0, 0.0]


def test_window_clips_are_left_out_of_the_reference(tmp_path: Path, reference_df: pd.DataFrame, projection: Projection) -> None:
    """A window is never judged against itself: its clips that the reference holds are left out of it."""
    day = reference_df[reference_df["event_timestamp"].dt.strftime("%Y-%m-%d") == "2026-10-21"]
    result = drift_report(reference_df, day, projection, DriftConfig(), tmp_path, name="own-day")
    assert result.n_current == len(day)
    assert result.n_reference == len(reference_df) - len(day)
    assert not result.drifted, (result.share_drifted, result.drifted_columns)  # an ordinary day vs the other three
    with pytest.raises(ValueError, match="every reference clip is in the window"):
        drift_report(reference_df, reference_df, projection, DriftConfig(), tmp_path, name="all")


def _validated_root(root: Path, manifest: pd.DataFrame) -> Path:
    (root / "validated").mkdir(parents=True)
    manifest.to_parquet(root / "validated" / "clips.parquet")
    return root


def test_with_manifest_joins_text_and_split(tmp_path: Path, reference_df: pd.DataFrame) -> None:
    features = reference_df.drop(columns=["title", "ocr", "asr"]).head(6)
    manifest = reference_df[["clip_id", "title", "ocr", "asr"]].head(6).assign(split=["train"] * 4 + ["val"] * 2)
    root = _validated_root(tmp_path / "root", manifest.iloc[::-1])  # any row order
    joined = with_manifest(features, root)
    assert joined["clip_id"].tolist() == features["clip_id"].tolist()
    assert joined["title"].tolist() == reference_df["title"].head(6).tolist()
    assert select_reference(joined, ("train",))["clip_id"].tolist() == features["clip_id"].head(4).tolist()
    stranger = pd.concat([features, features.head(1).assign(clip_id="elsewhere")], ignore_index=True)
    with pytest.raises(ValueError, match=r"1 of 7 feature rows are not in the accepted manifest .*'elsewhere'"):
        with_manifest(stranger, root)
    with pytest.raises(FileNotFoundError, match="clipguard data validate"):
        with_manifest(features, tmp_path / "no-root")


def test_select_reference_errors(reference_df: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="with_manifest"):
        select_reference(reference_df, ("train",))
    with pytest.raises(ValueError, match=r"no reference clip in splits \['train'\] \(the data has splits \['val'\]\)"):
        select_reference(reference_df.assign(split="val"), ("train",))


def test_window_period_names_the_traffic_days_not_the_run_date() -> None:
    from clipguard.monitoring.drift import window_period

    one_day = pd.DataFrame({"event_timestamp": pd.to_datetime(["2026-11-05T01:00", "2026-11-05T23:59"])})
    assert window_period(one_day) == "2026-11-05"
    two_days = pd.DataFrame({"event_timestamp": pd.to_datetime(["2026-11-05T23:00Z", "2026-11-04T08:00Z", None])})
    assert window_period(two_days) == "2026-11-04..2026-11-05"
    assert window_period(two_days, by="hour") == "2026-11-04T08-00..2026-11-05T23-00"
    assert window_period(pd.DataFrame({"clip_id": ["a"]})) is None
