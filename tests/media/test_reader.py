import numpy as np
import pytest

from clipguard.media.reader import MediaError, decode_clip, iter_frames, probe, read_audio

from .conftest import SR


def frame_index(img: np.ndarray) -> int:
    return int(round(float(img.mean()) / 4))


def test_probe_describes_file(media_dir):
    info = probe(media_dir / "av.mp4")
    assert info.duration_s == pytest.approx(6.0, abs=0.05)
    assert (info.width, info.height) == (64, 48)
    assert info.has_audio and info.audio_sample_rate == SR
    assert not info.variable_frame_rate
    assert info.size_bytes > 0


def test_frames_sampled_at_requested_rate(media_dir):
    frames = list(iter_frames(media_dir / "av.mp4", fps=1.0))
    assert [f.t for f in frames] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    # at 10 fps, sampling time t shows frame 10*t (grey level encodes the index)
    assert [frame_index(f.image) for f in frames] == [0, 10, 20, 30, 40, 50]
    fast = list(iter_frames(media_dir / "av.mp4", fps=4.0, start=1.0, end=2.0))
    assert [frame_index(f.image) for f in fast] == [10, 12, 15, 17]  # t=1.0,1.25,1.5,1.75: last frame at or before t


def test_frames_resized(media_dir):
    f = next(iter_frames(media_dir / "av.mp4", size=32))
    assert f.image.shape == (32, 32, 3) and f.image.dtype == np.uint8
    f = next(iter_frames(media_dir / "av.mp4", size=(40, 20)))
    assert f.image.shape == (20, 40, 3)


def test_audio_window_exact_length_and_content(media_dir):
    audio, has_audio = read_audio(media_dir / "av.mp4", start=2.0, end=3.5, sample_rate=SR)
    assert has_audio
    assert audio.dtype == np.float32 and audio.shape == (int(1.5 * SR),)
    # a 440 Hz tone of amplitude 0.3 survives AAC: dominant frequency and level
    spec = np.abs(np.fft.rfft(audio))
    assert np.argmax(spec) * SR / len(audio) == pytest.approx(440, abs=5)
    assert 0.15 < np.sqrt(np.mean(audio**2)) < 0.3


def test_no_audio_track_gives_flagged_silence(media_dir):
    assert not probe(media_dir / "silent.mp4").has_audio
    clip = decode_clip(media_dir / "silent.mp4", fps=1.0)
    assert clip.has_audio is False
    assert clip.audio.shape == (int(round(clip.duration_s * SR)),) and not clip.audio.any()
    assert clip.frames.shape[0] == 3


def test_variable_frame_rate(media_dir):
    info = probe(media_dir / "vfr.mp4")
    assert info.variable_frame_rate
    assert info.duration_s >= 3.0
    frames = list(iter_frames(media_dir / "vfr.mp4", fps=2.0))
    # frames at pts 0,.1,.2,.5,.55,1.0,1.5,1.6,2.5,3.0: the last frame at or before each t
    assert [(f.t, f.pts_time) for f in frames] == [
        (0.0, 0.0),
        (0.5, 0.5),
        (1.0, 1.0),
        (1.5, 1.5),
        (2.0, 1.6),
        (2.5, 2.5),
        (3.0, 3.0),
    ]


def test_very_short_file(media_dir):
    clip = decode_clip(media_dir / "short.mp4", fps=1.0)
    assert clip.frames.shape[0] == 1
    assert clip.duration_s == pytest.approx(0.2, abs=0.05)
    assert clip.has_audio


@pytest.mark.parametrize(
    "name,reason", [("corrupt.mp4", "decode_error"), ("empty.mp4", "empty_file"), ("nope.mp4", "missing_file")]
)
def test_bad_files_raise_reasoned_errors(media_dir, name, reason):
    with pytest.raises(MediaError) as ei:
        probe(media_dir / name)
    assert ei.value.reason == reason
    assert name in str(ei.value)
    with pytest.raises(MediaError):
        decode_clip(media_dir / name)


def test_bad_window_rejected(media_dir):
    with pytest.raises(MediaError) as ei:
        decode_clip(media_dir / "av.mp4", start=3.0, end=2.0)
    assert ei.value.reason == "bad_window"


@pytest.mark.parametrize("call", ["probe", "frames", "audio", "clip"])
def test_a_decode_past_its_time_limit_is_a_decode_timeout(media_dir, call):
    # a limit far below what any decode takes: every call stops with the reason, none hangs
    path, limit = media_dir / "av.mp4", 1e-6
    with pytest.raises(MediaError) as e:
        if call == "probe":
            probe(path, timeout_s=limit)
        elif call == "frames":
            list(iter_frames(path, fps=10.0, timeout_s=limit))
        elif call == "audio":
            read_audio(path, timeout_s=limit)
        else:
            decode_clip(path, 0.0, 6.0, timeout_s=limit)
    assert e.value.reason == "decode_timeout" and "limit" in e.value.detail


def test_a_generous_time_limit_changes_nothing(media_dir):
    a = decode_clip(media_dir / "av.mp4", 0.0, 6.0)
    b = decode_clip(media_dir / "av.mp4", 0.0, 6.0, timeout_s=600.0)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.audio, b.audio)
    assert probe(media_dir / "vfr.mp4", timeout_s=600.0).variable_frame_rate


def test_time_limit_must_be_positive(media_dir):
    with pytest.raises(ValueError, match="timeout_s"):
        probe(media_dir / "av.mp4", timeout_s=0)
