"""Data-contract validation with quarantine (clipguard.data.validate)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clipguard.config import load_config
from clipguard.data.schema import CLIP_COLUMNS, PAIR_COLUMNS, REASONS, arrow_schema
from clipguard.data.validate import ManifestCounts, ValidationResult, validate_manifests
from tests.conftest import TinyRoot, write_tiny_video

GOOD_CLIPS = {f"c{i}" for i in range(6)}
GOOD_PAIRS = {f"p{i}" for i in range(4)}


def run(root: TinyRoot, overrides: dict[str, Any] | None = None, **kwargs: Any) -> ValidationResult:
    return validate_manifests(root.path, load_config(overrides=overrides), progress=False, **kwargs)


def read(path: Path | None) -> pd.DataFrame:
    assert path is not None
    return pq.read_table(path).to_pandas()


def pair_counts(result: ValidationResult) -> ManifestCounts:
    assert result.pairs is not None
    return result.pairs


def check_counts(result: ValidationResult) -> None:
    """in == accepted + quarantined, in the result and in the files."""
    for counts, accepted, quarantine in (
        (result.clips, result.clips_path, result.clips_quarantine_path),
        (result.pairs, result.pairs_path, result.pairs_quarantine_path),
    ):
        if counts is None:
            continue
        assert counts.rows_in == counts.accepted + counts.quarantined
        assert (len(read(accepted)), len(read(quarantine))) == (counts.accepted, counts.quarantined)


def quarantined(result: ValidationResult, kind: str, id_column: str) -> dict[str, pd.Series]:
    path = result.clips_quarantine_path if kind == "clips" else result.pairs_quarantine_path
    return {row[id_column]: row for _, row in read(path).iterrows()}


def assert_clip_quarantined(result: ValidationResult, clip_id: str, reason: str) -> pd.Series:
    """``clip_id`` is quarantined for ``reason`` with a message naming it; the other good clips pass."""
    check_counts(result)
    rows = quarantined(result, "clips", "clip_id")
    assert clip_id in rows, f"{clip_id} not quarantined: {list(rows)}"
    row = rows[clip_id]
    assert reason in list(row["reasons"]), row["message"]
    assert f"clip {clip_id} (row {row['row_index']})" in row["message"] and reason in row["message"]
    assert set(read(result.clips_path).clip_id) == GOOD_CLIPS - set(rows)
    return row


def assert_pair_quarantined(result: ValidationResult, pair_id: str, reason: str) -> pd.Series:
    check_counts(result)
    rows = quarantined(result, "pairs", "pair_id")
    assert pair_id in rows, f"{pair_id} not quarantined: {list(rows)}"
    row = rows[pair_id]
    assert reason in list(row["reasons"]), row["message"]
    assert f"pair {pair_id} (row {row['row_index']})" in row["message"]
    return row


# --------------------------------------------------------------------------- the good root


def test_good_root_is_accepted_with_contract_types_and_flags(tiny_root: TinyRoot) -> None:
    tiny_root.clips["extra_note"] = "kept"
    tiny_root.write()
    result = run(tiny_root)

    check_counts(result)
    assert (result.clips.accepted, result.clips.quarantined) == (6, 0)
    assert (pair_counts(result).accepted, pair_counts(result).quarantined) == (4, 0)
    schema = pq.read_schema(result.clips_path)
    assert schema.names[: len(CLIP_COLUMNS)] == [c.name for c in CLIP_COLUMNS]
    for field in arrow_schema(CLIP_COLUMNS):
        assert schema.field(field.name).type == field.type
    assert schema.names[len(CLIP_COLUMNS) :] == ["extra_note", "duration_s", "has_audio", "variable_frame_rate", "flags"]
    assert pq.read_schema(result.pairs_path).equals(arrow_schema(PAIR_COLUMNS))

    clips = read(result.clips_path).set_index("clip_id")
    assert {k: list(v) for k, v in clips["flags"].items() if len(v)} == {
        "c4": ["no_audio"],
        "c5": ["variable_frame_rate"],
    }
    assert not clips.at["c4", "has_audio"] and clips.at["c5", "variable_frame_rate"]
    assert clips.at["c0", "duration_s"] == pytest.approx(2.0, abs=0.1)
    assert list(clips.at["c2", "labels"]) == ["weapons", "scam"] and set(clips.extra_note) == {"kept"}
    assert result.clips.flags == {"no_audio": 1, "variable_frame_rate": 1}


def test_csv_manifests(tiny_root: TinyRoot) -> None:
    clips_csv = tiny_root.write_csv("clips", tiny_root.clips)
    pairs_csv = tiny_root.write_csv("pairs", tiny_root.pairs)
    assert "weapons|scam" in clips_csv.read_text()

    result = run(tiny_root, clips_path=clips_csv, pairs_path=pairs_csv)

    check_counts(result)
    assert (result.clips.accepted, pair_counts(result).accepted) == (6, 4)
    clips = read(result.clips_path).set_index("clip_id")
    assert list(clips.at["c2", "labels"]) == ["weapons", "scam"] and list(clips.at["c0", "labels"]) == []
    assert clips.at["c1", "event_timestamp"] == pd.Timestamp("2026-11-01T01:00:00Z")
    assert read(result.pairs_path).label.dtype == np.int64


def test_clips_only_root(tiny_root: TinyRoot) -> None:
    tiny_root.pairs_path.unlink()
    result = run(tiny_root)
    assert result.pairs is None and result.pairs_path is None
    assert result.clips.accepted == 6 and not (result.out_dir / "pairs.parquet").exists()


# --------------------------------------------------------------------------- media


@pytest.mark.parametrize("damage", ["random_bytes", "truncated"])
def test_corrupt_mp4(tiny_root: TinyRoot, damage: str) -> None:
    video = tiny_root.path / "videos" / "c.mp4"
    data = video.read_bytes()
    video.write_bytes(np.random.default_rng(0).bytes(4000) if damage == "random_bytes" else data[: len(data) // 2])
    result = run(tiny_root)
    row = assert_clip_quarantined(result, "c3", "decode_error")
    assert "videos/c.mp4" in row["message"]


def test_zero_length_file(tiny_root: TinyRoot) -> None:
    (tiny_root.path / "videos" / "c.mp4").write_bytes(b"")
    assert_clip_quarantined(run(tiny_root), "c3", "empty_file")


def test_missing_file(tiny_root: TinyRoot) -> None:
    tiny_root.clips.loc[3, "video_uri"] = "videos/nope.mp4"
    tiny_root.write()
    row = assert_clip_quarantined(run(tiny_root), "c3", "missing_file")
    assert f"videos/nope.mp4 does not exist under {tiny_root.path.resolve()}" in row["message"]


@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink"])
def test_path_outside_root(tiny_root: TinyRoot, how: str) -> None:
    outside = write_tiny_video(tiny_root.path.parent / "outside.mp4", 1.0)
    if how == "symlink":
        (tiny_root.path / "videos" / "link.mp4").symlink_to(outside)
    uri = {"dotdot": "../outside.mp4", "absolute": str(outside), "symlink": "videos/link.mp4"}[how]
    tiny_root.clips.loc[3, "video_uri"] = uri
    tiny_root.write()
    assert_clip_quarantined(run(tiny_root), "c3", "path_outside_root")


def test_absolute_path_inside_root_is_accepted(tiny_root: TinyRoot) -> None:
    tiny_root.clips.loc[3, "video_uri"] = str(tiny_root.path / "videos" / "c.mp4")
    tiny_root.write()
    assert run(tiny_root).clips.accepted == 6


def test_oversized_file(tiny_root: TinyRoot) -> None:
    sizes = {p.name: p.stat().st_size for p in (tiny_root.path / "videos").iterdir()}
    limit = sizes["silent.mp4"]
    assert all(size > limit for name, size in sizes.items() if name != "silent.mp4")
    result = run(tiny_root, {"validation.max_file_bytes": limit})
    assert_clip_quarantined(result, "c3", "oversized_file")
    assert set(read(result.clips_path).clip_id) == {"c4"}


def test_no_audio_quarantine_mode(tiny_root: TinyRoot) -> None:
    result = run(tiny_root, {"validation.no_audio": "quarantine"})
    assert_clip_quarantined(result, "c4", "no_audio")
    assert result.clips.flags == {"variable_frame_rate": 1}
    assert_pair_quarantined(result, "p2", "unknown_clip:query_clip_id")


def test_window_beyond_media_and_duration(tiny_root: TinyRoot) -> None:
    tiny_root.clips.loc[3, "end_s"] = 5.0
    tiny_root.write()
    result = run(tiny_root, {"validation.max_duration_s": 1.9})
    assert_clip_quarantined(result, "c3", "window_beyond_media")
    assert_clip_quarantined(result, "c0", "duration_out_of_range")
    assert result.clips.reasons == {"duration_out_of_range": 2, "window_beyond_media": 1}


def test_each_video_is_probed_once(tiny_root: TinyRoot, monkeypatch: pytest.MonkeyPatch) -> None:
    from clipguard.data import validate as v

    probed: list[str] = []
    real = v.probe

    def counting_probe(path: Path, **kwargs: Any) -> v.MediaInfo:
        probed.append(str(path))
        return real(path, **kwargs)

    monkeypatch.setattr(v, "probe", counting_probe)
    run(tiny_root)
    assert len(probed) == len(set(probed)) == 5


# --------------------------------------------------------------------------- types


def test_wrong_column_type(tiny_root: TinyRoot) -> None:
    tiny_root.clips["start_s"] = tiny_root.clips["start_s"].astype(str)
    tiny_root.clips.loc[3, "start_s"] = "abc"
    tiny_root.write()
    row = assert_clip_quarantined(run(tiny_root), "c3", "bad_type:start_s")
    assert list(row["reasons"]) == ["bad_type:start_s"] and row["start_s"] == "abc"


def test_wrong_labels_type(tiny_root: TinyRoot) -> None:
    tiny_root.clips["labels"] = [json.dumps(x) for x in tiny_root.clips["labels"]]
    tiny_root.clips.loc[3, "labels"] = '["scam", 3]'
    tiny_root.write()
    result = run(tiny_root)
    assert_clip_quarantined(result, "c3", "bad_type:labels")
    assert list(read(result.clips_path).set_index("clip_id").at["c2", "labels"]) == ["weapons", "scam"]


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_nan_and_inf(tiny_root: TinyRoot, fmt: str) -> None:
    clips = tiny_root.clips
    clips.loc[2, "start_s"], clips.loc[3, "end_s"] = np.nan, np.inf
    if fmt == "csv":
        result = run(tiny_root, clips_path=tiny_root.write_csv("clips", clips))
    else:  # pandas writes NaN as null: rebuild the column with Arrow to store a real NaN
        tiny_root.write()
        table = pq.read_table(tiny_root.clips_path)
        column = table.schema.get_field_index("start_s")
        table = table.set_column(column, "start_s", pa.array(clips["start_s"].tolist(), pa.float64()))
        pq.write_table(table, tiny_root.clips_path)
        result = run(tiny_root)
    assert list(assert_clip_quarantined(result, "c2", "non_finite:start_s")["reasons"]) == ["non_finite:start_s"]
    assert list(assert_clip_quarantined(result, "c3", "non_finite:end_s")["reasons"]) == ["non_finite:end_s"]


def test_null_and_empty_ids(tiny_root: TinyRoot) -> None:
    tiny_root.clips.loc[3, "video_uri"] = "  "
    tiny_root.clips.loc[2, "title"] = None
    tiny_root.write()
    result = run(tiny_root)
    assert_clip_quarantined(result, "c3", "null_value:video_uri")
    assert_clip_quarantined(result, "c2", "null_value:title")


def test_missing_required_column(tiny_root: TinyRoot) -> None:
    tiny_root.clips = tiny_root.clips.drop(columns=["split"])
    tiny_root.write()
    result = run(tiny_root)
    check_counts(result)
    assert (result.clips.rows_in, result.clips.accepted, result.clips.quarantined) == (6, 0, 6)
    assert result.clips.reasons == {"schema_missing_column:split": 6}
    rows = quarantined(result, "clips", "clip_id")
    assert all("schema_missing_column:split" in list(r["reasons"]) for r in rows.values())
    assert (pair_counts(result).accepted, pair_counts(result).quarantined) == (0, 4)
    assert json.loads(result.report_path.read_text())["manifests"]["clips"]["quarantined"] == 6


# --------------------------------------------------------------------------- rules (GX)


def test_unknown_policy_label(tiny_root: TinyRoot) -> None:
    tiny_root.clips.at[3, "labels"] = ["scam", "not_a_policy"]
    tiny_root.write()
    row = assert_clip_quarantined(run(tiny_root), "c3", "unknown_label")
    assert "'not_a_policy'" in row["message"]


def test_duplicate_clip_ids(tiny_root: TinyRoot) -> None:
    tiny_root.clips.loc[3, "clip_id"] = "c2"
    tiny_root.write()
    result = run(tiny_root)
    check_counts(result)
    q = read(result.clips_quarantine_path)
    assert sorted(q.row_index) == [2, 3] and all("duplicate_id:clip_id" in list(r) for r in q.reasons)
    assert all("clip c2 (row" in m for m in q.message)
    assert set(read(result.clips_path).clip_id) == GOOD_CLIPS - {"c2", "c3"}
    assert_pair_quarantined(result, "p1", "unknown_clip:query_clip_id")


def test_duplicate_pair_ids(tiny_root: TinyRoot) -> None:
    tiny_root.pairs.loc[3, "pair_id"] = "p0"
    tiny_root.write()
    result = run(tiny_root)
    q = read(result.pairs_quarantine_path)
    assert sorted(q.row_index) == [0, 3] and all(list(r) == ["duplicate_id:pair_id"] for r in q.reasons)
    assert set(read(result.pairs_path).pair_id) == {"p1", "p2"}
    check_counts(result)


def test_unknown_split(tiny_root: TinyRoot) -> None:
    tiny_root.clips.loc[3, "split"] = "holdout"
    tiny_root.write()
    assert_clip_quarantined(run(tiny_root), "c3", "unknown_split")


@pytest.mark.parametrize(("start", "end"), [(1.0, 0.5), (0.5, 0.5), (-1.0, 0.5)])
def test_bad_window(tiny_root: TinyRoot, start: float, end: float) -> None:
    tiny_root.clips.loc[3, ["start_s", "end_s"]] = [start, end]
    tiny_root.write()
    row = assert_clip_quarantined(run(tiny_root), "c3", "bad_window")
    assert list(row["reasons"]) == ["bad_window"]


@pytest.mark.parametrize("value", ["yesterday-ish", "1999-12-31T23:59:59Z", "2150-01-01"])
def test_bad_timestamp(tiny_root: TinyRoot, value: str) -> None:
    tiny_root.clips["event_timestamp"] = tiny_root.clips["event_timestamp"].map(pd.Timestamp.isoformat)
    tiny_root.clips.loc[3, "event_timestamp"] = value
    tiny_root.write()
    row = assert_clip_quarantined(run(tiny_root), "c3", "bad_timestamp")
    assert row["event_timestamp"] == value


def test_text_too_long(tiny_root: TinyRoot) -> None:
    tiny_root.clips.loc[3, "title"] = "x" * 513
    tiny_root.write()
    row = assert_clip_quarantined(run(tiny_root), "c3", "text_too_long:title")
    assert "513 characters > max_title_chars=512" in row["message"]


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [("label", 2, "bad_label"), ("reason", "smell", "unknown_reason"), ("candidate_clip_id", "c2", "self_pair")],
)
def test_bad_pairs(tiny_root: TinyRoot, column: str, value: Any, reason: str) -> None:
    tiny_root.pairs.loc[1, column] = value
    tiny_root.write()
    result = run(tiny_root)
    assert list(assert_pair_quarantined(result, "p1", reason)["reasons"]) == [reason]
    assert set(read(result.pairs_path).pair_id) == GOOD_PAIRS - {"p1"}


def test_pair_referencing_quarantined_clip(tiny_root: TinyRoot) -> None:
    (tiny_root.path / "videos" / "c.mp4").unlink()
    tiny_root.pairs.loc[0, "query_clip_id"] = "c404"
    tiny_root.write()
    result = run(tiny_root)
    assert_clip_quarantined(result, "c3", "missing_file")
    assert_pair_quarantined(result, "p1", "unknown_clip:candidate_clip_id")
    row = assert_pair_quarantined(result, "p0", "unknown_clip:query_clip_id")
    assert "'c404' is not an accepted clip" in row["message"]
    assert set(read(result.pairs_path).pair_id) == {"p2", "p3"}


def test_several_reasons_on_one_row(tiny_root: TinyRoot) -> None:
    tiny_root.clips.loc[3, ["split", "title", "video_uri"]] = ["holdout", "x" * 600, "videos/nope.mp4"]
    tiny_root.write()
    row = assert_clip_quarantined(run(tiny_root), "c3", "unknown_split")
    assert list(row["reasons"]) == ["unknown_split", "text_too_long:title"]  # media of dead rows is not probed


# --------------------------------------------------------------------------- runs and reports


def test_rerun_is_a_noop_and_force_reruns(tiny_root: TinyRoot) -> None:
    first = run(tiny_root)
    stamp = first.clips_path.stat().st_mtime_ns
    again = run(tiny_root)
    assert again.reused and not first.reused and again.fingerprint == first.fingerprint
    assert again.clips == first.clips and first.clips_path.stat().st_mtime_ns == stamp
    forced = run(tiny_root, force=True)
    assert not forced.reused and forced.clips == first.clips

    video = tiny_root.path / "videos" / "c.mp4"
    os.utime(video, ns=(video.stat().st_atime_ns, video.stat().st_mtime_ns + 10**9))
    assert not run(tiny_root).reused
    assert not run(tiny_root, {"validation.no_audio": "quarantine"}).reused


def test_validation_records_the_data_version_that_travels_with_the_root(tiny_root: TinyRoot) -> None:
    from clipguard.data.schema import DATA_VERSION_FILE, data_version, hash_manifests

    result = run(tiny_root)
    recorded = result.out_dir / DATA_VERSION_FILE
    assert recorded.read_text().strip() == result.data_version == hash_manifests(result.out_dir)
    assert data_version(tiny_root.path) == result.data_version
    # later steps read the recorded version; they do not hash the manifests again
    recorded.write_text("dfrom_validation\n")
    assert data_version(tiny_root.path) == "dfrom_validation"
    recorded.unlink()  # a root written without validation: hashed
    assert data_version(tiny_root.path) == result.data_version


def test_report_json_and_html(tiny_root: TinyRoot) -> None:
    tiny_root.clips.loc[3, "split"] = "holdout"
    tiny_root.write()
    result = run(tiny_root)
    report = json.loads(result.report_path.read_text())
    clips = report["manifests"]["clips"]
    assert (clips["rows_in"], clips["accepted"], clips["quarantined"]) == (6, 5, 1)
    assert clips["reasons"] == {"unknown_split": 1} and clips["flags"] == {"no_audio": 1, "variable_frame_rate": 1}
    split_rule = next(e for e in clips["expectations"] if e["reason"] == "unknown_split")
    assert split_rule == {
        "frame": "clips",
        "expectation": "expect_column_values_to_be_in_set",
        "column": "split",
        "reason": "unknown_split",
        "success": False,
        "unexpected_count": 1,
    }
    assert report["inputs"]["clips"]["sha256"] and report["config"]["validation"]["no_audio"] == "flag"
    assert report["timings_s"]["total"] > 0 and clips["quarantine_preview"][0]["id"] == "c3"
    assert all(r.split(":")[0] in REASONS for m in report["manifests"].values() for r in m["reasons"])
    html = result.html_path.read_text()
    assert html.startswith("<!DOCTYPE html>") and "unknown_split" in html and "clip c3 (row 3)" in html


def test_refuses_foreign_out_dir(tiny_root: TinyRoot) -> None:
    with pytest.raises(FileExistsError, match="did not write"):
        validate_manifests(tiny_root.path, load_config(), out_dir=tiny_root.path / "videos", progress=False)
    assert (tiny_root.path / "videos" / "a.mp4").exists()


def test_interrupted_write_keeps_previous_output(tiny_root: TinyRoot, monkeypatch: pytest.MonkeyPatch) -> None:
    first = run(tiny_root)
    before = {p.name: p.read_bytes() for p in first.out_dir.iterdir()}
    written: list[Path] = []
    write_table = pq.write_table

    def write_then_crash(table: Any, path: Path) -> None:
        if written:
            Path(path).write_bytes(b"half a parquet file")
            raise KeyboardInterrupt
        written.append(Path(path))
        write_table(table, path)

    monkeypatch.setattr(pq, "write_table", write_then_crash)
    with pytest.raises(KeyboardInterrupt):
        run(tiny_root, force=True)
    assert written and written[0].parent != first.out_dir
    assert {p.name: p.read_bytes() for p in first.out_dir.iterdir()} == before
    assert [p.name for p in tiny_root.path.iterdir() if p.name.startswith(".validated")] == []


def test_staging_of_a_killed_run_is_removed(tiny_root: TinyRoot) -> None:
    stale = tiny_root.path / ".validated.tmp-999999999-deadbeef-x"
    stale.mkdir()
    (tiny_root.path / ".validated.keep").mkdir()
    run(tiny_root)
    assert not stale.exists() and (tiny_root.path / ".validated.keep").exists()
