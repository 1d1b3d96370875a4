from pathlib import Path

import numpy as np
import pytest

from clipguard.media.writer import write_video

SR = 16_000


def ramp_frames(n: int, h: int = 48, w: int = 64):
    """Frame i is uniformly grey level 4*i (mod 256): the decoded value tells the frame index."""
    for i in range(n):
        yield np.full((h, w, 3), (4 * i) % 256, np.uint8)


def tone(seconds: float, freq: float = 440.0, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("media")
    write_video(d / "av.mp4", ramp_frames(60), fps=10, audio=tone(6.0), sample_rate=SR)
    write_video(d / "silent.mp4", ramp_frames(30), fps=10, audio=None)
    times = [0.0, 0.1, 0.2, 0.5, 0.55, 1.0, 1.5, 1.6, 2.5, 3.0]
    write_video(d / "vfr.mp4", ramp_frames(len(times)), fps=10, timestamps=times)
    write_video(d / "short.mp4", ramp_frames(2), fps=10, audio=tone(0.2), sample_rate=SR)
    (d / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    (d / "empty.mp4").write_bytes(b"")
    return d
