"""BlazeFace's frame shrink: one INTER_AREA step against halving first (``blazeface.shrink``).

    python bench/detector_shrink.py --videos ../shared/data/videos \
        --json bench/results/detector_shrink.json

The detector letterboxes every frame into its 128 px (short range) or 192 px (full range)
input. Until 2026-12-07 it shrank the frame with one ``cv2.INTER_AREA`` step, which OpenCV
runs slowly at non-integer factors; :func:`liveaffect.runtime.detectors.blazeface.shrink`
halves it with ``INTER_AREA`` (a fast, exact 2x2 mean) while it is at least twice the
target, then takes one ``INTER_AREA`` step. This script measures, for each shared clip:

* ``resize``: the shrink alone, per model input size, one step against halving (median
  microseconds over ``--repeat`` calls on the clip's first frame) and the mean absolute
  difference between the two pictures (grey levels);
* ``detector``: the default detector (``both``, small-face search on, full range every 4th
  frame) over the clip's frames with each shrink, in ``--rounds`` alternating rounds:
  wall milliseconds per frame (median over rounds), faces found, how many of the one-step
  run's faces were found (a box of the same frame with IoU > 0.5), missed or added, their
  mean box IoU, and the one-person clips' box jitter (mean 1 - IoU between consecutive
  boxes).

The one-step shrink is put in place by replacing the module's ``shrink`` for the runs
that need it (a measurement, not an option of the detector).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import cv2
import numpy as np
from _results import write_result
from full_range_schedule import CLIPS, ONE_PERSON, _compare, _frames, _jitter

from liveaffect.runtime.detectors import blazeface


def one_step(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The shrink before 2026-12-07: one INTER_AREA step."""
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


SHRINKS = {"one_step": one_step, "halving": blazeface.shrink}


def _micro_us(fn, image: np.ndarray, size: tuple[int, int], repeat: int) -> float:
    fn(image, size)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(image, size)
        times.append(time.perf_counter() - t0)
    return round(1e6 * float(np.median(times)), 1)


def _resize_rows(frame: np.ndarray, repeat: int) -> list[dict]:
    h, w = frame.shape[:2]
    rows = []
    for spec in blazeface.MODELS.values():
        scale = spec.input_size / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        a, b = one_step(frame, size), blazeface.shrink(frame, size)
        rows.append(
            {
                "input": spec.input_size,
                "to": f"{size[0]}x{size[1]}",
                "one_step_us": _micro_us(one_step, frame, size, repeat),
                "halving_us": _micro_us(blazeface.shrink, frame, size, repeat),
                "mean_abs_diff": round(float(np.abs(a.astype(float) - b).mean()), 3),
            }
        )
    return rows


def _detect_all(detector, frames: list[np.ndarray], shrink) -> tuple[list, float]:
    blazeface.shrink = shrink
    try:
        detector.reset()
        t0 = time.perf_counter()
        found = [detector.detect(frame) for frame in frames]
        return found, 1000 * (time.perf_counter() - t0) / len(frames)
    finally:
        blazeface.shrink = SHRINKS["halving"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", required=True, help="folder of the shared clips")
    p.add_argument("--clips", default=",".join(CLIPS), help="comma-separated clip names")
    p.add_argument("--frames", type=int, default=0, help="first frames of each clip (0: all)")
    p.add_argument("--rounds", type=int, default=3, help="alternating detector rounds")
    p.add_argument("--repeat", type=int, default=200, help="calls per shrink timing")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()
    if args.rounds < 1 or args.repeat < 1:
        raise SystemExit("error: --rounds and --repeat must be 1 or more")
    detector = blazeface.BlazeFaceDetector()
    clips = []
    for clip in [c.strip() for c in args.clips.split(",") if c.strip()]:
        frames = _frames(Path(args.videos) / clip, args.frames)
        h, w = frames[0].shape[:2]
        resize = _resize_rows(frames[0], args.repeat)
        times: dict[str, list[float]] = {name: [] for name in SHRINKS}
        found = {}
        for _ in range(args.rounds):
            for name, fn in SHRINKS.items():
                found[name], ms = _detect_all(detector, frames, fn)
                times[name].append(ms)
        entry = {"clip": clip, "frame": f"{w}x{h}", "frames": len(frames), "resize": resize}
        for name in SHRINKS:
            entry[name] = {
                "ms_per_frame": round(float(np.median(times[name])), 2),
                **_compare(found["one_step"], found[name]),
                "jitter": _jitter(found[name]) if clip in ONE_PERSON else None,
            }
        clips.append(entry)
        for r in resize:
            print(
                f"{clip:34s} {w}x{h} -> {r['to']:>7s}: one step {r['one_step_us']:7.1f} us, "
                f"halving {r['halving_us']:7.1f} us, mean |diff| {r['mean_abs_diff']}"
            )
        for name in SHRINKS:
            d = entry[name]
            print(
                f"{clip:34s} detector, {name:8s}: {d['ms_per_frame']:6.2f} ms/frame, faces "
                f"{d['faces']} (missed {d['missed']}, extra {d['extra']}, box IoU "
                f"{d['box_iou']}), jitter {d['jitter']}"
            )
    if args.json:
        write_result(
            args.json,
            {"detector": "blazeface both, small faces on, full range every 4th", "clips": clips},
        )
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
