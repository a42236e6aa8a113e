"""End to end, headless: the real CLI, the real default detector, a tiny random bundle.

``python emotion_classifier.py ../shared/data/videos/pyfeat_single_face.mp4 --no-display
--csv out.csv --output out.mp4 --model <tiny bundle>`` in a subprocess.
"""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import cv2
import pytest
from conftest import shared_path

from liveaffect.runtime.sinks import CSV_COLUMNS

REPO = Path(__file__).resolve().parents[2]


def parse_summary(stdout: str) -> dict[str, str]:
    lines = [line for line in stdout.splitlines() if line.startswith("summary:")]
    assert len(lines) == 1, stdout
    return dict(re.findall(r"(\w+)=(\S+)", lines[0]))


def run_app(*argv, bundle: Path) -> subprocess.CompletedProcess:
    """``python emotion_classifier.py ARGV --no-display --model BUNDLE``; exit status 0."""
    proc = subprocess.run(
        [sys.executable, "emotion_classifier.py", *argv, "--no-display", "--model", str(bundle)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


@pytest.mark.slow
@pytest.mark.shared
def test_single_face_video_headless(tmp_path, tiny_bundle):
    video = shared_path("videos", "pyfeat_single_face.mp4")
    out_csv, out_mp4 = tmp_path / "out.csv", tmp_path / "out.mp4"
    proc = run_app(str(video), "--csv", str(out_csv), "--output", str(out_mp4), bundle=tiny_bundle)
    assert "Traceback" not in proc.stderr
    summary = parse_summary(proc.stdout)
    frames = int(summary["frames"])
    assert frames == 72 and summary["stop"] == "end"  # every frame of the file, in order
    assert summary["ids"] == "1"
    assert sum(line.startswith("FPS: ") for line in proc.stdout.splitlines()) == frames // 10
    assert "found poorly" not in proc.stdout  # a card without per-AU F1 names no weak AU

    with out_csv.open() as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames) == CSV_COLUMNS
        rows = list(reader)
    per_frame = Counter(int(r["frame"]) for r in rows)
    assert len(per_frame) >= 0.9 * frames  # a face in at least 90% of the frames
    assert len(rows) == int(summary["faces"])  # a row per face per frame
    assert {r["face_id"] for r in rows} == {"1"}  # the single person keeps one id
    order = [int(r["frame"]) for r in rows]
    assert order == sorted(order) and max(order) < frames  # written in frame order
    for row in rows:  # every column filled (all heads of this bundle are trained)
        assert all(row[c] != "" for c in CSV_COLUMNS), row
        x1, y1, x2, y2 = (float(row[k]) for k in ("x1", "y1", "x2", "y2"))
        assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 360
        probs = [float(row[c]) for c in CSV_COLUMNS if c.startswith("p_")]
        assert sum(probs) == pytest.approx(1.0, abs=1e-3)
        assert row["expression"] in {c[2:] for c in CSV_COLUMNS if c.startswith("p_")}
        assert {row[c] for c in CSV_COLUMNS if c.endswith("_active")} <= {"0", "1"}
        # a file's timestamp is the frame's position in the video (30 fps), not a clock
        assert float(row["timestamp_ms"]) == pytest.approx(int(row["frame"]) * 1000 / 30, abs=1)

    cap = cv2.VideoCapture(str(out_mp4))
    written = 0
    while cap.read()[0]:
        written += 1
    cap.release()
    assert written == frames


@pytest.mark.shared
def test_a_still_image_is_searched_in_every_tile(tmp_path, tiny_bundle):
    """A crowd frame as a JPEG: the small-face tiles are searched at once, not one per frame
    as in a video (only 2 of its 5 faces were found that way)."""
    capture = cv2.VideoCapture(str(shared_path("videos", "facenet_pytorch_video.mp4")))
    capture.set(cv2.CAP_PROP_POS_FRAMES, 60)
    ok, frame = capture.read()
    capture.release()
    assert ok
    image = tmp_path / "crowd.jpg"
    cv2.imwrite(str(image), frame)
    proc = run_app(str(image), bundle=tiny_bundle)
    assert int(parse_summary(proc.stdout)["faces"]) >= 5, proc.stdout
