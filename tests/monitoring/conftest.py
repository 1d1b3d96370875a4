"""Fixtures of the monitoring tests: synthetic traffic, one drift timeline, a local webhook receiver."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clipguard.config import DriftConfig
from clipguard.monitoring.alerts import LocalReceiver, local_receiver
from clipguard.monitoring.drift import DriftResult, Projection, drift_timeline, fit_projection
from tests.monitoring.synth import World, make_clips, make_traffic, make_world

TREND_DAY = "2026-11-03"
SMALL_DAY = "2026-10-31"
CORPUS_ORDINARY = ("2026-11-01", "2026-11-02")
CORPUS_TREND = "2026-11-03"


@pytest.fixture(scope="session")
def world() -> World:
    return make_world(0)


@pytest.fixture(scope="session")
def reference_df(world: World) -> pd.DataFrame:
    """The training reference: 4 ordinary days of 200 clips."""
    return pd.concat([make_clips(world, 200, seed=10 + i, day=f"2026-10-2{i}") for i in range(4)], ignore_index=True)


@pytest.fixture(scope="session")
def traffic_df(world: World) -> pd.DataFrame:
    """A day of 20 clips (too few to evaluate), 2 ordinary days, then the trend day (30% trend)."""
    small = make_clips(world, 20, seed=99, day=SMALL_DAY)
    return pd.concat([small, make_traffic(world, days=3, trend_day=2, per_day=250)], ignore_index=True)


@pytest.fixture(scope="session")
def projection(reference_df: pd.DataFrame) -> Projection:
    return fit_projection(reference_df, DriftConfig().projection_dims)


@dataclass
class Timeline:
    out_dir: Path
    results: list[DriftResult]

    def day(self, period: str) -> DriftResult:
        return next(r for r in self.results if r.period == period)


@pytest.fixture(scope="session")
def timeline(
    tmp_path_factory: pytest.TempPathFactory,
    reference_df: pd.DataFrame,
    traffic_df: pd.DataFrame,
    projection: Projection,
) -> Timeline:
    """``drift_timeline`` with the default config, run once for all drift tests."""
    out = tmp_path_factory.mktemp("drift")
    return Timeline(out, drift_timeline(reference_df, traffic_df, projection, DriftConfig(), out))


@dataclass(frozen=True)
class MiniCorpus:
    """A validated data root and its extracted-features folders, as the generated corpus lays them out."""

    root: Path
    features: Path
    """every clip (one encoder version folder inside)"""
    trend_features: Path
    """the trend day's clips only (a drift-watch window)"""


def _write_features(clips: pd.DataFrame, folder: Path) -> Path:
    folder.mkdir(parents=True)
    table = clips[["clip_id", "event_timestamp", "has_audio"]].assign(
        encoder_version="e123",
        clip_embedding=clips["clip_embedding"].map(list),
        text_pooled=clips["text_pooled"].map(list),
    )
    table.to_parquet(folder / "clip_features.parquet")
    return folder.parent


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory, world: World) -> MiniCorpus:
    """One root holding ordinary days split 70/30 train/val, then a trend day (30% of its
    clips show the trend) of ``traffic`` clips; features without text, as extraction writes them."""
    days = [make_clips(world, 200, seed=40 + i, day=d) for i, d in enumerate(CORPUS_ORDINARY)]
    clips = pd.concat([*days, make_clips(world, 150, seed=49, day=CORPUS_TREND, trend_rate=0.3)], ignore_index=True)
    rng = np.random.default_rng(0)
    ordinary = clips["event_timestamp"].dt.strftime("%Y-%m-%d").isin(CORPUS_ORDINARY)
    clips["split"] = np.where(ordinary, np.where(rng.random(len(clips)) < 0.7, "train", "val"), "traffic")
    base = tmp_path_factory.mktemp("corpus")
    root = base / "root"
    (root / "validated").mkdir(parents=True)
    clips[["clip_id", "title", "ocr", "asr", "split", "has_audio"]].to_parquet(root / "validated" / "clips.parquet")
    return MiniCorpus(
        root=root,
        features=_write_features(clips, base / "features" / "e123"),
        trend_features=_write_features(clips[~ordinary], base / "trend_features" / "e123"),
    )


Receiver = LocalReceiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with local_receiver() as state:
        yield state
