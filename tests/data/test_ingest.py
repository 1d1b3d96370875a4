import pandas as pd
import pyarrow.parquet as pq

from clipguard.config import load_config
from clipguard.data.ingest import ingest_videos
from clipguard.data.schema import CLIP_COLUMNS, arrow_schema
from clipguard.media.writer import write_video
from tests.media.conftest import SR, ramp_frames, tone


def test_ingest_cuts_videos_into_contract_clips(tmp_path):
    vids = tmp_path / "videos"
    write_video(vids / "long.mp4", ramp_frames(45), fps=1, audio=tone(45), sample_rate=SR)
    write_video(vids / "sub" / "short.mp4", ramp_frames(30), fps=10, audio=None)
    (vids / "broken.mp4").write_bytes(b"not a video")
    (vids / "notes.txt").write_text("ignored")
    meta = pd.DataFrame([{"video_uri": "videos/long.mp4", "title": "my stream", "labels": "scam|weapons", "split": "train"}])
    meta.to_csv(tmp_path / "meta.csv", index=False)

    r = ingest_videos(tmp_path, load_config(), metadata=tmp_path / "meta.csv", progress=False)

    assert (r.files_in, r.files_ingested, r.files_quarantined) == (3, 2, 1)
    table = pq.read_table(r.manifest)
    assert table.schema.equals(arrow_schema(CLIP_COLUMNS))
    df = table.to_pandas()
    long = df[df.video_uri == "videos/long.mp4"].sort_values("start_s")
    assert list(zip(long.start_s, long.end_s)) == [(0.0, 20.0), (20.0, 40.0), (40.0, 45.0)]
    assert set(long.title) == {"my stream"} and list(long.labels.iloc[0]) == ["scam", "weapons"]
    assert set(long.split) == {"train"}
    short = df[df.video_uri == "videos/sub/short.mp4"]
    assert len(short) == 1 and short.split.iloc[0] == "traffic" and short.source.iloc[0] == "upload"
    assert df.clip_id.is_unique
    q = pd.read_parquet(r.quarantine)
    assert list(q.video_uri) == ["videos/broken.mp4"] and q.reason.iloc[0] == "decode_error"


def test_ingest_counts_links_and_special_files_instead_of_skipping_them(tmp_path):
    import os

    outside = tmp_path / "elsewhere" / "real.mp4"
    write_video(outside, ramp_frames(3), fps=1, audio=None)
    root = tmp_path / "root"
    vids = root / "videos"
    write_video(vids / "good.mp4", ramp_frames(3), fps=1, audio=None)
    (vids / "escape.mp4").symlink_to(outside)  # a link out of the data root
    (vids / "dangling.mp4").symlink_to(root / "gone.mp4")
    os.mkfifo(vids / "pipe.mp4")  # opening a FIFO blocks forever: it must never be probed

    r = ingest_videos(root, load_config(), progress=False)

    assert (r.files_in, r.files_ingested, r.files_quarantined) == (4, 1, 3)
    q = pd.read_parquet(r.quarantine).set_index("video_uri")["reason"].to_dict()
    assert q == {
        "videos/escape.mp4": "path_outside_root",
        "videos/dangling.mp4": "missing_file",
        "videos/pipe.mp4": "missing_file",
    }


def test_ingest_applies_the_contract_duration_bounds(tmp_path):
    write_video(tmp_path / "videos" / "blip.mp4", ramp_frames(1), fps=10, audio=None)  # 0.1 s

    r = ingest_videos(tmp_path, load_config(), progress=False)

    assert (r.files_ingested, r.files_quarantined) == (0, 1)
    assert pd.read_parquet(r.quarantine).reason.tolist() == ["duration_out_of_range"]
