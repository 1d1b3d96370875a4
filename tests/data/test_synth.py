"""The synthetic corpus generator (clipguard.synth) on a small configuration.

One corpus is generated per module (60 base clips, 4 days, trend on day 2, one 44-s
livestream, 2-4 s uploads) and shared by the tests; a second one with the same seed (and
two worker processes) checks determinism.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from clipguard.config import Config, SynthConfig
from clipguard.data.schema import CLIP_COLUMNS, CLIPS_FILE, PAIR_COLUMNS, PAIRS_FILE, SPLITS, arrow_schema
from clipguard.media.clipper import plan_windows
from clipguard.media.reader import decode_clip, probe, read_audio
from clipguard.synth import generate_corpus, plan_corpus
from clipguard.synth.corpus import clips_table
from clipguard.synth.edits import AUDIO_EDITS, HELDOUT_EDITS, TRAIN_EDITS, TREND_EDITS
from clipguard.synth.policies import POLICIES, labels_for
from clipguard.synth.render import render_video
from clipguard.synth.sources import HELDOUT_SOURCES
from clipguard.synth.text import TREND_HASHTAG, contains_slur

SEED = 7


def small_config(workers: int = 1) -> Config:
    synth = SynthConfig(
        clips=60,
        days=4,
        trend_day=2,
        streams=1,
        stream_seconds=44.0,
        min_seconds=2.0,
        max_seconds=4.0,
        violation_rate=0.1,
        positive_rate=0.05,  # few copy videos keep this module fast (the default is 0.25)
        min_test_copies=0,  # no extra test copies either (tested on a plan below)
        workers=workers,
    )
    return Config(synth=synth)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "corpus"
    generate_corpus(out, SEED, small_config(), progress=False)
    return out


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same seed and config generated again, rendered by two worker processes."""
    out = tmp_path_factory.mktemp("synth_twin") / "corpus"
    generate_corpus(out, SEED, small_config(workers=2), progress=False)
    return out


@pytest.fixture(scope="module")
def clips(corpus: Path):
    return pq.read_table(corpus / CLIPS_FILE).to_pandas()


@pytest.fixture(scope="module")
def pairs(corpus: Path):
    return pq.read_table(corpus / PAIRS_FILE).to_pandas()


@pytest.fixture(scope="module")
def plan():
    cfg = small_config()
    return plan_corpus(SEED, cfg.synth, cfg.media, cfg.policy.policies)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _files(root: Path) -> dict[str, str]:
    files = sorted(root.rglob("*.mp4")) + sorted(root.rglob("*.parquet"))
    return {str(p.relative_to(root)): _md5(p) for p in files}


# -- contract ------------------------------------------------------------------------------


def test_manifests_follow_the_contract(corpus: Path, clips, pairs) -> None:
    for path, columns, extras in (
        (CLIPS_FILE, CLIP_COLUMNS, ["template_id", "day", "source_media", "has_audio", "trend", "evidence"]),
        (
            PAIRS_FILE,
            PAIR_COLUMNS,
            ["edit_types", "heldout_edit", "heldout_source", "hard_negative", "trend_edit"],
        ),
    ):
        schema = pq.read_schema(corpus / path)
        want = arrow_schema(columns)
        assert schema.names[: len(want)] == want.names
        for f in want:
            assert schema.field(f.name).type == f.type, f.name
        assert schema.names[len(want) :] == extras
    assert clips.clip_id.is_unique and pairs.pair_id.is_unique
    assert set(pairs.query_clip_id) | set(pairs.candidate_clip_id) <= set(clips.clip_id)
    assert (pairs.query_clip_id != pairs.candidate_clip_id).all()
    assert set(clips.split) <= set(SPLITS) and set(pairs.split) <= set(SPLITS)
    assert clips.video_uri.str.fullmatch(r"videos/[vs]\d+\.mp4").all()
    meta = json.loads((corpus / "corpus.json").read_text())
    assert meta["seed"] == SEED and meta["trend_day"] == 2 and meta["policies"] == list(POLICIES)
    assert meta["counts"]["clips"] == len(clips) and meta["counts"]["pairs"] == len(pairs)


def test_every_clip_video_exists_and_decodes(corpus: Path, clips) -> None:
    for uri, rows in clips.groupby("video_uri"):
        info = probe(corpus / uri)
        assert (info.width, info.height) == (160, 120)
        assert rows.end_s.max() <= info.duration_s + 0.05, uri
        assert (rows.end_s > rows.start_s).all()
        assert info.has_audio == bool(rows.has_audio.iloc[0]), uri


def test_no_audio_videos_are_flagged(corpus: Path, clips) -> None:
    silent = clips[~clips.has_audio]
    assert 0 < len(silent) < 0.15 * len(clips)
    assert (silent.asr == "").all()
    assert not probe(corpus / silent.video_uri.iloc[0]).has_audio
    assert read_audio(corpus / silent.video_uri.iloc[0])[1] is False


# -- determinism and idempotency -----------------------------------------------------------


def test_same_seed_gives_identical_files(corpus: Path, twin: Path, clips) -> None:
    a, b = _files(corpus), _files(twin)
    assert a == b and len(a) == clips.video_uri.nunique() + 2
    for uri in sorted(set(clips.video_uri))[:: max(1, clips.video_uri.nunique() // 4)]:
        x, y = decode_clip(corpus / uri, fps=10), decode_clip(twin / uri, fps=10)
        assert np.array_equal(x.frames, y.frames) and np.array_equal(x.audio, y.audio)


def test_different_seed_gives_a_different_corpus(plan) -> None:
    cfg = small_config()
    other = plan_corpus(SEED + 1, cfg.synth, cfg.media, cfg.policy.policies)
    a, b = clips_table(plan).to_pandas(), clips_table(other).to_pandas()
    assert a.title.tolist() != b.title.tolist()
    fa, _, _ = render_video(plan.video_specs()[0])
    fb, _, _ = render_video(other.video_specs()[0])
    assert fa.shape != fb.shape or np.abs(fa.astype(int) - fb).mean() > 5


def test_rerun_is_idempotent_and_resumes(tmp_path: Path, corpus: Path) -> None:
    out = tmp_path / "copy"
    shutil.copytree(corpus, out)
    before = _files(out)
    again = generate_corpus(out, SEED, small_config(), progress=False)
    assert again.rendered == 0 and _files(out) == before
    lost = sorted((out / "videos").glob("*.mp4"))[:3]
    for p in lost:
        p.unlink()
    resumed = generate_corpus(out, SEED, small_config(), progress=False)
    assert resumed.rendered == len(lost) and _files(out) == before
    with pytest.raises(FileExistsError, match="another seed/config"):
        generate_corpus(out, SEED + 1, small_config(), progress=False)


# -- labels, time and splits ---------------------------------------------------------------


def test_labels_come_from_evidence(clips) -> None:
    for labels, evidence in zip(clips.labels, clips.evidence, strict=True):
        tags = set(filter(None, evidence.split(",")))
        assert list(labels) == labels_for(tags)
        assert set(labels) <= set(POLICIES)
    pre = clips[(clips.split != "traffic") & (clips.source == "upload")]
    rate = pre.labels.map(len).gt(0).mean()
    assert 0 < rate < 0.25
    seen = {p for ls in clips.labels for p in ls}
    assert seen == set(POLICIES)


def test_hate_lexicon_appears_only_in_hate_speech_clips(clips) -> None:
    text = clips.title + " " + clips.ocr + " " + clips.asr
    has_slur = text.map(contains_slur)
    hate = clips.labels.map(lambda ls: "hate_speech" in ls)
    assert has_slur.any()
    assert (has_slur == hate).all()


def test_trend_only_from_the_trend_day(clips, pairs) -> None:
    assert ((clips.day >= 2) == (clips.split == "traffic")).all()
    trend = clips[clips.trend]
    assert len(trend) > 0 and (trend.day >= 2).all()
    hashtag = (clips.title + " " + clips.ocr).str.contains(TREND_HASHTAG, regex=False)
    assert hashtag.any() and (clips[hashtag].day >= 2).all()
    trend_pairs = pairs[pairs.trend_edit]
    assert len(trend_pairs) > 0 and (trend_pairs.split == "traffic").all()
    assert trend_pairs.edit_types.str.contains("split_screen").all()
    assert not pairs[pairs.split != "traffic"].edit_types.str.contains("split_screen").any()


def test_templates_do_not_leak_across_splits(clips) -> None:
    fixed = clips[clips.split != "traffic"]
    assert fixed.groupby("template_id").split.nunique().max() == 1
    held = clips[clips.source_media.isin(HELDOUT_SOURCES)]
    assert len(held) > 0 and (held.split == "test").all()


def test_livestreams_are_cut_into_20s_windows(clips) -> None:
    live = clips[clips.source == "livestream"]
    assert len(live) > 0
    for _, rows in live.groupby("video_uri"):
        windows = list(zip(rows.start_s, rows.end_s, strict=True))
        assert windows == plan_windows(44.0, 20.0, 0.0, 1.0)
        assert all(e - s == 20.0 for s, e in windows[:-1])
    assert (clips[clips.source == "upload"].start_s == 0).all()


# -- RCI pairs -----------------------------------------------------------------------------


def test_pairs_have_the_configured_structure(clips, pairs) -> None:
    assert len(pairs) == 180
    pos = pairs[pairs.label == 1]
    assert 0.03 <= len(pos) / len(pairs) <= 0.08
    assert set(pos.reason) == {"visual", "audio", "text"}
    assert (pairs[pairs.label == 0].reason == "none").all()
    assert 0.3 <= pairs[pairs.label == 0].hard_negative.mean() <= 0.5
    by_id = clips.set_index("clip_id")
    q, c = by_id.loc[pairs.query_clip_id], by_id.loc[pairs.candidate_clip_id]
    assert (pairs.split.to_numpy() == q.split.to_numpy()).all()
    ts = pairs.event_timestamp.to_numpy()
    assert (ts >= q.event_timestamp.to_numpy()).all() and (ts >= c.event_timestamp.to_numpy()).all()
    known = set(TRAIN_EDITS + HELDOUT_EDITS + TREND_EDITS + AUDIO_EDITS)
    ops = {op for s in pairs.edit_types for op in s.split(",") if op}
    assert ops <= known
    assert (pos[pos.reason == "visual"].edit_types != "").all()
    assert (pairs[pairs.label == 0].edit_types == "").all()


def test_heldout_edit_types_only_in_test_pairs(pairs) -> None:
    uses = pairs.edit_types.map(lambda s: any(op in HELDOUT_EDITS for op in s.split(",")))
    assert (uses == pairs.heldout_edit).all()
    assert uses.any() and (pairs[uses].split == "test").all()


def test_text_positives_copy_the_text(clips, pairs) -> None:
    by_id = clips.set_index("clip_id")
    for _, p in pairs[pairs.reason == "text"].iterrows():
        q, c = by_id.loc[p.query_clip_id], by_id.loc[p.candidate_clip_id]
        assert (q.title, q.ocr, q.asr) == (c.title, c.ocr, c.asr)
        assert q.template_id == c.template_id and q.video_uri != c.video_uri


def test_audio_positives_reuse_the_soundtrack(corpus: Path, clips, pairs, plan) -> None:
    by_id = clips.set_index("clip_id")
    specs = {s.video_id: s for s in plan.video_specs()}

    def corr(a: np.ndarray, b: np.ndarray) -> float:
        # copies get their own duration: compare the span both soundtracks cover
        a, b = a[: min(len(a), len(b))], b[: min(len(a), len(b))]
        n = len(a) + len(b)
        x = np.fft.irfft(np.fft.rfft(a, n) * np.conj(np.fft.rfft(b, n)), n)
        return float(np.abs(x).max() / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))

    def own_soundtrack(uri: str) -> bool:  # no edits, no (shared) Big Buck Bunny music
        spec = specs[Path(uri).stem]
        return not spec.edits and all(s.kind != "music" for s in spec.scenes[0].sounds)

    audio_pairs = pairs[pairs.reason == "audio"]
    assert len(audio_pairs) > 0
    others = clips[(clips.source == "upload") & clips.has_audio & clips.video_uri.map(own_soundtrack)]
    for _, p in audio_pairs.iterrows():
        q, c = by_id.loc[p.query_clip_id], by_id.loc[p.candidate_clip_id]
        assert q.template_id == c.template_id and q.title != c.title
        qa, _ = read_audio(corpus / q.video_uri)
        ca, _ = read_audio(corpus / c.video_uri)
        unrelated, _ = read_audio(corpus / others[others.template_id != q.template_id].video_uri.iloc[0])
        assert corr(qa, ca) > 0.7
        assert corr(qa, unrelated) < 0.5


def test_ocr_text_is_rendered(corpus: Path, clips, plan) -> None:
    """Frames of a clip with a caption differ from the same spec rendered without it inside
    the caption box, and the encoded file shows the caption there."""
    specs = {s.video_id: s for s in plan.video_specs()}
    with_text = clips[(clips.ocr != "") & (clips.source == "upload")]
    checked = 0
    for uri in with_text.video_uri[:3]:
        spec = specs[Path(uri).stem]
        if spec.edits:
            continue
        overlay = spec.scenes[0].overlays[0]
        plain = replace(spec, scenes=(replace(spec.scenes[0], overlays=()),))
        frames, _, _ = render_video(spec)
        bare, _, _ = render_video(plain)
        y0, x0 = overlay.y, overlay.x
        box = (slice(None), slice(y0, y0 + 10), slice(x0, x0 + 20))
        assert np.abs(frames[box].astype(int) - bare[box]).mean() > 20
        decoded = decode_clip(corpus / uri, fps=10).frames.astype(int)
        assert np.abs(decoded[box] - frames[box]).mean() < np.abs(decoded[box] - bare[box]).mean() / 3
        checked += 1
    assert checked > 0


# -- shortcuts and test size (plans only: nothing rendered) --------------------------------


@pytest.fixture(scope="module")
def default_plan():
    cfg = Config()
    return plan_corpus(0, cfg.synth, cfg.media, cfg.policy.policies)


def test_copy_length_carries_no_label(default_plan) -> None:
    """Copies get durations drawn like any upload's (time-crop / speed for visual copies), so
    scoring pairs by -|duration difference| is no better than chance."""
    from sklearn.metrics import average_precision_score

    p = default_plan.pairs
    label = np.array([x.label for x in p])
    diff = np.array([abs((x.query.end_s - x.query.start_s) - (x.candidate.end_s - x.candidate.start_s)) for x in p])
    ap = average_precision_score(label, -diff)
    assert ap < label.mean() + 0.05, f"duration difference scores AP {ap:.3f} at chance {label.mean():.3f}"
    equal = diff < 1e-6
    assert equal[label == 1].mean() < 0.2  # was 0.82 before copies were retimed
    visual = [x for x in p if x.label == 1 and x.reason == "visual"]
    retimed = sum(1 for x in visual if {"trim", "speed"} & set(x.edit_types))
    assert retimed / len(visual) > 0.8


def test_test_split_has_enough_copies(default_plan) -> None:
    test = [x for x in default_plan.pairs if x.query.split == "test"]
    pos = [x for x in test if x.label == 1]
    assert len(pos) >= 150
    assert 0.15 <= len(pos) / len(test) <= 0.35  # negatives were added at positive_rate too
    for op in HELDOUT_EDITS:
        assert sum(1 for x in pos if op in x.edit_types) >= 10, op
