import tracemalloc

import numpy as np
import pytest

from clipguard.config import MediaConfig
from clipguard.media.clipper import iter_clips, plan_windows
from clipguard.media.writer import write_video

from .conftest import SR, ramp_frames, tone


@pytest.mark.parametrize(
    "duration,clip,overlap,expected",
    [
        (64.0, 20, 0, [(0, 20), (20, 40), (40, 60), (60, 64)]),
        (5.3, 20, 0, [(0, 5.3)]),
        (40.5, 20, 0, [(0, 20), (20, 40.5)]),  # a 0.5 s tail merges into the last clip
        (60.0, 20, 5, [(0, 20), (15, 35), (30, 50), (45, 60)]),
        (40.0, 20, 0, [(0, 20), (20, 40)]),
    ],
)
def test_plan_windows(duration, clip, overlap, expected):
    assert plan_windows(duration, clip, overlap, min_s=1.0) == [(float(a), float(b)) for a, b in expected]


def test_plan_windows_cover_the_video_without_gaps():
    for duration in (0.3, 19.9, 20.0, 20.5, 21.0, 123.4, 3600.0):
        for overlap in (0.0, 2.0, 10.0):
            w = plan_windows(duration, 20.0, overlap, 1.0)
            assert w[0][0] == 0.0 and w[-1][1] == pytest.approx(duration)
            assert all(b > a for a, b in w)
            assert all(w[i + 1][0] <= w[i][1] for i in range(len(w) - 1))
            assert all(b - a <= 21.0 for a, b in w)


@pytest.mark.parametrize("bad", [dict(duration_s=0), dict(duration_s=float("nan")), dict(duration_s=10, clip_s=5, overlap_s=5)])
def test_plan_windows_rejects_nonsense(bad):
    args = dict(duration_s=10, clip_s=20, overlap_s=0)
    args.update(bad)
    with pytest.raises(ValueError):
        plan_windows(**args)


def test_iter_clips_streams_a_long_recording(tmp_path):
    """A 5-minute recording is decoded one 20-s clip at a time: peak memory stays near one
    clip's worth, far below the whole file's decoded audio (300 s x 16 kHz x 4 B = 19.2 MB)."""
    seconds, fps = 300, 4
    path = write_video(tmp_path / "stream.mp4", ramp_frames(seconds * fps), fps=fps, audio=tone(seconds), sample_rate=SR)
    whole_audio_bytes = seconds * SR * 4
    tracemalloc.start()
    try:
        clips = []
        for c in iter_clips(path, MediaConfig(frame_size=None, clip_seconds=20.0)):
            clips.append((c.start_s, c.end_s, c.frames.shape[0], c.audio.shape[0], c.has_audio))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(clips) == 15
    assert clips[0] == (0.0, 20.0, 20, 20 * SR, True)
    assert clips[-1][:2] == (280.0, 300.0)
    assert peak < whole_audio_bytes / 2, f"peak {peak} B suggests the file was loaded at once"


def test_iter_clips_frames_are_from_their_window(tmp_path):
    path = write_video(tmp_path / "s.mp4", ramp_frames(50), fps=1, audio=None)
    clips = list(iter_clips(path, MediaConfig(frame_size=None, clip_seconds=20.0, fps=1.0)))
    assert [(c.start_s, c.end_s) for c in clips] == [(0.0, 20.0), (20.0, 40.0), (40.0, 50.0)]
    second = clips[1]
    assert np.allclose(second.frame_times, np.arange(20, 40))
    assert int(round(second.frames[0].mean() / 4)) == 20
    assert not second.has_audio and not second.audio.any()
