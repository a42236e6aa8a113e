"""BlazeFace ``both`` on a video: full range on every frame or every Nth (--full-range-every).

    python bench/full_range_schedule.py --videos ../shared/data/videos \
        --json bench/results/full_range_schedule.json

For each shared clip and each N in ``--every`` the default detector (``both``, small-face
search on) runs over the clip's frames, N after N, for ``--rounds`` alternating rounds. It
reports, against N = 1 (full range on every frame, the default before 2026-12-07):

* ``ms_per_frame``: the detector's wall milliseconds per frame (median over the rounds);
* ``full_range_share``: the share of frames on which full range searched the whole frame;
* ``faces``, ``matched``, ``missed``, ``extra``: faces found, and how many of N = 1's faces
  it found too (a box of the same frame with IoU > 0.5), missed, or added;
* ``box_iou``: the mean IoU of the matched boxes with N = 1's;
* ``jitter``: for the one-person clips, the mean of 1 - IoU between the face's boxes in
  consecutive frames (how much the box moves on its own; a box that changed with the
  schedule would jump every Nth frame).
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

from liveaffect.runtime.tracker import iou_matrix

CLIPS = (
    "pyfeat_WolfgangLanger_Pexels.mp4",
    "pyfeat_single_face.mp4",
    "pyfeat_face_noface.mov",
    "facenet_pytorch_video.mp4",
)
ONE_PERSON = ("pyfeat_WolfgangLanger_Pexels.mp4", "pyfeat_single_face.mp4")


def _frames(path: Path, limit: int) -> list[np.ndarray]:
    from liveaffect.runtime.video import SourceError, open_source

    try:
        with open_source(path) as source:
            out = [frame.image_bgr for frame in itertools.islice(source, limit or None)]
    except SourceError as exc:
        raise SystemExit(f"error: {exc}") from None
    if not out:
        raise SystemExit(f"error: no frames read from {path}")
    return out


def _run(detector, frames: list[np.ndarray]) -> tuple[list, float, int]:
    """The detector over ``frames`` from a fresh start: (detections per frame, wall ms per
    frame, whole-frame full-range searches)."""
    full, calls = detector._models["full"], []

    def counted(bgr, score):
        calls.append(1)
        return full(bgr, score)

    detector._models["full"] = counted
    detector.reset()
    t0 = time.perf_counter()
    found = [detector.detect(frame) for frame in frames]
    ms = 1000 * (time.perf_counter() - t0) / len(frames)
    detector._models["full"] = full
    return found, ms, len(calls)


def _compare(reference: list, found: list) -> dict[str, float]:
    matched = missed = extra = 0
    ious = []
    for ref, got in zip(reference, found, strict=True):
        used: set[int] = set()
        for r in ref:
            ious_r = iou_matrix([r.xyxy], [g.xyxy for g in got])[0]
            scores = [(float(ious_r[j]), j) for j in range(len(got)) if j not in used]
            best, j = max(scores, default=(0.0, -1))
            if best > 0.5:
                matched, ious = matched + 1, [*ious, best]
                used.add(j)
            else:
                missed += 1
        extra += len(got) - len(used)
    return {
        "faces": sum(len(f) for f in found),
        "matched": matched,
        "missed": missed,
        "extra": extra,
        "box_iou": round(float(np.mean(ious)), 3) if ious else None,
    }


def _jitter(found: list) -> float | None:
    boxes = [f[0].xyxy for f in found if len(f) == 1]
    if len(boxes) < 2:
        return None
    steps = [1 - iou_matrix([a], [b])[0, 0] for a, b in itertools.pairwise(boxes)]
    return round(float(np.mean(steps)), 4)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", required=True, help="folder of the shared clips")
    p.add_argument("--clips", default=",".join(CLIPS), help="comma-separated clip names")
    p.add_argument("--every", default="1,2,4,8", help="values of N to compare (1 is added)")
    p.add_argument("--frames", type=int, default=0, help="first frames of each clip (0: all)")
    p.add_argument("--rounds", type=int, default=2, help="alternating timing rounds")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()
    from liveaffect.runtime.detectors.blazeface import BlazeFaceDetector

    everies = sorted({1, *(int(v) for v in args.every.split(","))})
    if everies[0] < 1 or args.rounds < 1:
        raise SystemExit("error: --every values and --rounds must be 1 or more")
    detectors = {n: BlazeFaceDetector(full_range_every=n) for n in everies}
    rows = []
    for clip in [c.strip() for c in args.clips.split(",") if c.strip()]:
        frames = _frames(Path(args.videos) / clip, args.frames)
        times: dict[int, list[float]] = {n: [] for n in everies}
        runs = {}
        for _ in range(args.rounds):
            for n in everies:
                runs[n] = _run(detectors[n], frames)
                times[n].append(runs[n][1])
        h, w = frames[0].shape[:2]
        for n in everies:
            found, _, calls = runs[n]
            row = {
                "clip": clip,
                "frame": f"{w}x{h}",
                "frames": len(frames),
                "full_range_every": n,
                "ms_per_frame": round(float(np.median(times[n])), 2),
                "full_range_share": round(calls / len(frames), 3),
                **_compare(runs[1][0], found),
                "jitter": _jitter(found) if clip in ONE_PERSON else None,
            }
            rows.append(row)
            print(
                f"{clip:34s} N={n}: {row['ms_per_frame']:6.2f} ms/frame, full range on "
                f"{row['full_range_share']:.0%} of frames, faces {row['faces']} (missed "
                f"{row['missed']}, extra {row['extra']}, box IoU {row['box_iou']}), "
                f"jitter {row['jitter']}"
            )
    if args.json:
        write_result(args.json, {"detector": "blazeface both, small faces on", "rows": rows})
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
