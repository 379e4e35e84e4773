"""The video builder on a generated clip: one frame per interval, static frames skipped."""

import json

import av
import numpy as np
import pytest

from training.datasets.builders import build_video, sample_frames


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """4 s at 10 fps, 64x48: 2 s of a moving colored square, then 2 s of a still frame."""
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(40):
            frame = np.full((48, 64, 3), 255, np.uint8)
            x = min(i, 20) * 2  # moves for 2 s, then stands still
            frame[10:30, x:x + 20] = (200, 30, 30)
            frame[30:46, 40:60] = (30, 60, 200)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_sample_frames_every_half_second(clip):
    times = [round(t, 2) for t, _ in sample_frames(clip, every=0.5)]
    assert times == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5]


def test_video_builder_skips_static_frames_and_resumes(clip, tmp_path):
    out = tmp_path / "ds"
    stats = build_video(clip, out, every=0.5, size=32, license="CC0-1.0", progress=False)
    # Moving frames at 0, 0.5, 1.0, 1.5 and 2.0 s are kept; 2.5 .. 3.5 s are the same
    # still frame as 2.0 s and are near-duplicates.
    assert stats.written == 5 and stats.duplicates == 3 and stats.failed == 0
    recs = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [r["source"] for r in recs] == [f"clip.mp4@{t:.3f}s" for t in (0, 0.5, 1, 1.5, 2)]
    assert all((r["width"], r["height"]) == (32, 24) for r in recs)
    # Frames of one 30 s scene share a split (no neighbouring frames in train and test).
    assert len({r["split"] for r in recs}) == 1
    again = build_video(clip, out, every=0.5, size=32, progress=False)
    assert again.written == 0 and again.skipped == 5


def test_broken_video_is_counted_not_fatal(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 1000)
    stats = build_video(bad, tmp_path / "ds", progress=False)
    assert stats.written == 0 and stats.failed == 1
