"""Media: streamed decoding (PyAV), clipping into fixed windows, and MP4 writing."""

from clipguard.media.reader import (
    DecodedClip,
    MediaError,
    MediaInfo,
    SampledFrame,
    decode_clip,
    iter_frames,
    probe,
    read_audio,
)

__all__ = [
    "DecodedClip",
    "MediaError",
    "MediaInfo",
    "SampledFrame",
    "decode_clip",
    "iter_frames",
    "probe",
    "read_audio",
]
