"""Small faces: which face sizes the default detector finds, how soon, and what it costs.

    python bench/small_faces.py --videos ../shared/data/videos --json bench/results/small_faces.json

Faces of the one-person clips are shrunk to a given height and pasted at random places
into frames of the common sizes (a blurred-noise background). For every height and frame
size it reports:

* ``still``: the share found by one call of the detector with ``small_faces="still"``
  (every tile: what ``evaluate --detect`` does with an image);
* ``video``: the share found within ``--frames`` frames of the same picture with the
  default ``small_faces="video"`` (one tile every few frames, then followed), and the most
  frames it took;
* ``off``: the share the whole frame alone finds (``--no-small-faces``).

Then the cost: the default detector against ``--no-small-faces`` on the frames of the
one-face clip, alternating rounds, wall and CPU milliseconds per frame (medians).
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
from _results import write_result

HEIGHTS = (20, 24, 32, 48)
SIZES = ((640, 360), (640, 480), (1280, 720), (1920, 1080))
FACE_CLIPS = ("pyfeat_single_face.mp4", "pyfeat_WolfgangLanger_Pexels.mp4")
COST_CLIP = "pyfeat_WolfgangLanger_Pexels.mp4"


def _frames(path: Path, step: int, limit: int | None = None) -> list[np.ndarray]:
    """Every ``step``-th frame of the video at ``path`` (at most ``limit``), in order."""
    from liveaffect.runtime.video import SourceError, open_source

    try:
        with open_source(path) as source:
            taken = itertools.islice(source, 0, None if limit is None else limit * step, step)
            out = [frame.image_bgr for frame in taken]
    except SourceError as exc:
        raise SystemExit(f"error: {exc}") from None
    if not out:
        raise SystemExit(f"error: no frames read from {path}")
    return out


def _pictures(faces: list[np.ndarray], height: int, size, rng) -> list[np.ndarray]:
    """Each face frame shrunk so its face is ``height`` px, pasted into a ``size`` frame."""
    import cv2

    from liveaffect.runtime.detectors.blazeface import BlazeFaceDetector

    finder = BlazeFaceDetector(small_faces="off")
    w, h = size
    noise = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
    background = cv2.GaussianBlur(noise, (0, 0), 6)
    out = []
    for frame in faces:
        (face,) = finder.detect(frame)[:1]
        scale = height / face.height
        small = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        canvas = background.copy()
        y = int(rng.integers(0, h - small.shape[0]))
        x = int(rng.integers(0, w - small.shape[1]))
        canvas[y : y + small.shape[0], x : x + small.shape[1]] = small
        out.append(canvas)
    return out


def _found(detections, height: int) -> bool:
    return any(0.6 * height < d.height < 1.5 * height for d in detections)


def _sizes_table(faces: list[np.ndarray], frames: int, heights, min_score: float) -> list[dict]:
    from liveaffect.runtime.detectors.blazeface import BlazeFaceDetector

    rng = np.random.default_rng(0)
    modes = {
        m: BlazeFaceDetector(min_score=min_score, small_faces=m) for m in ("off", "still", "video")
    }
    rows = []
    for height in heights:
        for size in SIZES:
            pictures = _pictures(faces, height, size, rng)
            row = {"height": height, "frame": f"{size[0]}x{size[1]}", "pictures": len(pictures)}
            for mode in ("off", "still"):
                hits = [_found(modes[mode].detect(p), height) for p in pictures]
                row[mode] = float(np.mean(hits))
            video, waits = modes["video"], []
            for picture in pictures:
                video.reset()
                n = next((i for i in range(frames) if _found(video.detect(picture), height)), None)
                waits.append(n)
            row["video"] = float(np.mean([n is not None for n in waits]))
            row["video_most_frames"] = max((n + 1 for n in waits if n is not None), default=None)
            rows.append(row)
            print(
                f"{height:4d} px in {row['frame']:>9}: off {row['off']:.2f}  still "
                f"{row['still']:.2f}  video {row['video']:.2f} "
                f"(within {row['video_most_frames']} frames)"
            )
    return rows


def _cost(frames: list[np.ndarray], rounds: int, min_score: float) -> dict:
    from liveaffect.runtime.detectors.blazeface import BlazeFaceDetector

    detectors = {m: BlazeFaceDetector(min_score=min_score, small_faces=m) for m in ("video", "off")}
    wall = {m: [] for m in detectors}
    cpu = {m: [] for m in detectors}
    for _ in range(rounds):
        for mode, detector in detectors.items():
            detector.reset()
            t, c = time.perf_counter(), time.process_time()
            for frame in frames:
                detector.detect(frame)
            wall[mode].append((time.perf_counter() - t) / len(frames) * 1e3)
            cpu[mode].append((time.process_time() - c) / len(frames) * 1e3)
    out = {"frames": len(frames), "rounds": rounds}
    for mode in detectors:
        out[f"{mode}_wall_ms"] = round(float(np.median(wall[mode])), 3)
        out[f"{mode}_cpu_ms"] = round(float(np.median(cpu[mode])), 3)
    print(
        f"cost per {len(frames)}-frame round (median of {rounds}): detect "
        f"{out['off_wall_ms']:.2f} -> {out['video_wall_ms']:.2f} ms wall, "
        f"{out['off_cpu_ms']:.2f} -> {out['video_cpu_ms']:.2f} ms CPU (--no-small-faces -> default)"
    )
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", default="../shared/data/videos", help="the shared clips' folder")
    p.add_argument("--step", type=int, default=12, help="take every STEP-th frame of the clips")
    p.add_argument("--frames", type=int, default=160, help="video: frames to wait at most")
    p.add_argument("--rounds", type=int, default=5, help="cost: alternating rounds per mode")
    p.add_argument("--cost-frames", type=int, default=300, help="cost: frames per round")
    p.add_argument(
        "--heights",
        default=",".join(map(str, HEIGHTS)),
        help="face heights in px, comma-separated",
    )
    p.add_argument(
        "--min-score",
        type=float,
        default=None,
        help="detection score threshold (default: the app's --min-face-score default; "
        "results before 2026-12-07 used 0.5)",
    )
    p.add_argument("--json", help="write the results as JSON here")
    args = p.parse_args()
    from liveaffect.runtime.detectors import DEFAULT_MIN_SCORE

    min_score = DEFAULT_MIN_SCORE if args.min_score is None else args.min_score
    print(f"detection score threshold {min_score}")
    videos = Path(args.videos)
    faces = [f for name in FACE_CLIPS for f in _frames(videos / name, args.step)]
    heights = [int(h) for h in args.heights.split(",")]
    rows = _sizes_table(faces, args.frames, heights, min_score)
    cost = _cost(_frames(videos / COST_CLIP, 1, args.cost_frames), args.rounds, min_score)
    if args.json:
        result = {"detector": "blazeface both", "min_score": min_score, "sizes": rows}
        write_result(args.json, {**result, "cost": cost})
    return 0


if __name__ == "__main__":
    sys.exit(main())
