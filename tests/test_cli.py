"""The `clipguard` CLI end to end on a tiny data root (typer's test runner)."""

import json

import pandas as pd
from typer.testing import CliRunner

from clipguard.cli import app

runner = CliRunner()


def test_config_show_applies_profile_and_overrides():
    r = runner.invoke(app, ["--profile", "gpu", "--set", "media.fps=2", "config", "show"])
    assert r.exit_code == 0, r.output
    cfg = json.loads(r.stdout)
    assert cfg["profile"] == "gpu" and cfg["media"]["fps"] == 2.0


def test_bad_override_and_profile_exit_2():
    assert runner.invoke(app, ["--profile", "nope", "config", "show"]).exit_code == 2
    assert runner.invoke(app, ["--set", "media.fps=-1", "config", "show"]).exit_code == 2


def test_data_validate_quarantines_and_strict_fails(tiny_root):
    tiny_root.clips.loc[0, "video_uri"] = "../outside.mp4"
    tiny_root.write()
    r = runner.invoke(app, ["data", "validate", str(tiny_root.path)])
    assert r.exit_code == 0, r.output
    q = pd.read_parquet(tiny_root.path / "validated" / "clips_quarantine.parquet")
    assert list(q["reasons"].iloc[0]) == ["path_outside_root"]
    r = runner.invoke(app, ["data", "validate", str(tiny_root.path), "--strict"])
    assert r.exit_code == 1


def test_data_validate_missing_root_exits_2(tmp_path):
    assert runner.invoke(app, ["data", "validate", str(tmp_path / "nope")]).exit_code == 2


def test_media_probe(tiny_root):
    video = next((tiny_root.path / "videos").glob("*.mp4"))
    r = runner.invoke(app, ["media", "probe", str(video)])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["duration_s"] > 0
    (tiny_root.path / "bad.mp4").write_bytes(b"junk")
    assert runner.invoke(app, ["media", "probe", str(tiny_root.path / "bad.mp4")]).exit_code == 1
