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
