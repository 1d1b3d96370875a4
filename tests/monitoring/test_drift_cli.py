"""`clipguard monitoring drift` on a corpus in miniature: one root holding the training clips
of the ordinary days and the traffic of the trend day, as the generated corpus does."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from clipguard.cli import app
from tests.monitoring.conftest import CORPUS_ORDINARY as ORDINARY
from tests.monitoring.conftest import CORPUS_TREND as TREND
from tests.monitoring.conftest import MiniCorpus

runner = CliRunner()


def test_timeline_alerts_on_the_trend_day_only(corpus: MiniCorpus, tmp_path: Path) -> None:
    features, root = corpus.features, corpus.root
    out = tmp_path / "drift"
    r = runner.invoke(
        app, ["monitoring", "drift", "--reference", str(features), "--reference-root", str(root), "--out", str(out)]
    )
    assert r.exit_code == 0, r.output
    printed = json.loads(r.stdout[r.stdout.index("{") :])
    assert printed["first_drift"] == TREND
    assert [(p["period"], p["drifted"]) for p in printed["periods"]] == [
        (ORDINARY[0], False),
        (ORDINARY[1], False),
        (TREND, True),
    ]
    timeline = json.loads((out / "timeline.json").read_text())
    train = pd.read_parquet(root / "validated" / "clips.parquet").query("split == 'train'")
    for day in timeline:
        # the reference is the train split minus the day's own clips
        own = train["clip_id"].str.startswith(day["period"]).sum()
        assert day["n_reference"] == len(train) - own
        assert {"title_tokens", "new_words", "new_hashtags"} <= set(day["per_column"])
        assert Path(day["html_path"]).is_file()
    assert {"new_hashtags", "hashtag_count"} <= set(timeline[-1]["drifted_columns"])
    assert (out / "projection.npz").is_file()


def test_bad_inputs_exit_2_naming_the_problem(corpus: MiniCorpus, tmp_path: Path) -> None:
    features = corpus.features
    r = runner.invoke(app, ["monitoring", "drift", "--reference", str(tmp_path / "nope"), "--out", str(tmp_path)])
    assert r.exit_code == 2 and "extract features first" in r.output
    r = runner.invoke(
        app, ["monitoring", "drift", "--reference", str(features), "--reference-root", str(tmp_path), "--out", str(tmp_path)]
    )
    assert r.exit_code == 2 and "clipguard data validate" in r.output
    r = runner.invoke(app, ["monitoring", "drift", "--reference", str(features), "--by", "week"])
    assert r.exit_code == 2
