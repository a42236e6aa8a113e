"""How the default ``--min-face-score`` was chosen: detections per threshold on the shared clips.

    python bench/face_score.py --videos ../shared/data/videos --json bench/results/face_score.json

Runs the default detector over every frame at each threshold (its fallback for frames with
no face depends on the threshold), then counts:

* ``single_face_recall``: frames with a face, over the clips that show one person throughout
  (``pyfeat_single_face.mp4``, ``pyfeat_WolfgangLanger_Pexels.mp4``, and the first shot of
  ``pyfeat_face_noface.mov``); ``single_face_extra``: frames with more than one face there
  (each a false detection);
* ``cartoon_false_frames``: frames with any detection in the second shot of
  ``pyfeat_face_noface.mov`` (a cartoon with a title: every detection there is false), and
  ``cartoon_longest_run``, the longest run of consecutive such frames;
* ``crowd_faces_per_frame``: mean faces per frame in the 1080p crowd clip (all real faces
  walking toward the camera; more is better).

The shot boundary of ``pyfeat_face_noface.mov`` is found by the app's shot-cut detector.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from _results import write_result

SINGLE = ("pyfeat_single_face.mp4", "pyfeat_WolfgangLanger_Pexels.mp4")
CUT_CLIP = "pyfeat_face_noface.mov"
CROWD = "facenet_pytorch_video.mp4"
THRESHOLDS = (0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75)


def _counts(path: Path, detector) -> tuple[list[int], int | None]:
    """Faces per frame; and the index of the first shot cut (None if none)."""
    import cv2

    from liveaffect.runtime.shotcut import ShotCutDetector

    cuts, first_cut, out = ShotCutDetector(), None, []
    if callable(getattr(detector, "reset", None)):
        detector.reset()  # a new video (the small-face search follows faces between frames)
    capture = cv2.VideoCapture(str(path))
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        if cuts.update(frame) and first_cut is None:
            first_cut = len(out)
        out.append(len(detector.detect(frame)))
    capture.release()
    return out, first_cut


def _longest_run(flags: list[bool]) -> int:
    best = run = 0
    for flag in flags:
        run = run + 1 if flag else 0
        best = max(best, run)
    return best


def _row(threshold: float, videos: Path) -> dict[str, float]:
    from liveaffect.runtime.detectors import create_detector

    detector = create_detector(min_score=threshold)
    single = [n for name in SINGLE for n in _counts(videos / name, detector)[0]]
    mixed, cut = _counts(videos / CUT_CLIP, detector)
    if cut is None:
        raise SystemExit(f"error: no shot cut found in {CUT_CLIP}")
    single += mixed[:cut]
    cartoon, crowd = mixed[cut:], _counts(videos / CROWD, detector)[0]
    return {
        "threshold": threshold,
        "single_face_frames": len(single),
        "single_face_recall": sum(n >= 1 for n in single) / len(single),
        "single_face_extra": sum(n > 1 for n in single),
        "cartoon_frames": len(cartoon),
        "cartoon_false_frames": sum(n > 0 for n in cartoon),
        "cartoon_longest_run": _longest_run([n > 0 for n in cartoon]),
        "crowd_faces_per_frame": sum(crowd) / len(crowd),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", default="../shared/data/videos", help="the shared clips' folder")
    p.add_argument("--json", help="write the table as JSON here")
    args = p.parse_args()
    rows = [_row(t, Path(args.videos)) for t in THRESHOLDS]
    print(
        f"{rows[0]['single_face_frames']} one-person frames, {rows[0]['cartoon_frames']} "
        "cartoon frames; detector blazeface (full + short range)"
    )
    print("threshold  recall  extra  cartoon_frames  cartoon_run  crowd_faces/frame")
    for r in rows:
        print(
            f"{r['threshold']:9.2f}  {r['single_face_recall']:6.3f}  {r['single_face_extra']:5d}"
            f"  {r['cartoon_false_frames']:14d}  {r['cartoon_longest_run']:11d}"
            f"  {r['crowd_faces_per_frame']:17.2f}"
        )
    if args.json:
        write_result(
            args.json,
            {"detector": "blazeface both (full + short range)", "rows": rows},
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
