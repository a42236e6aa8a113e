"""Write a copy of a clip at another frame size, e.g. a 720p camera's, for ``bench`` runs.

    python bench/resize_clip.py --source ../shared/data/videos/pyfeat_WolfgangLanger_Pexels.mp4 \
        --size 1280x720 --out /tmp/pexels720.mp4

Every frame is resized (``INTER_CUBIC`` when enlarged, ``INTER_AREA`` when shrunk) and written
with OpenCV's ``mp4v`` codec at the source's frame rate. The speed rows measured "at 720p" in
``bench/README.md`` ran ``python -m liveaffect bench --source /tmp/pexels720.mp4 ...`` on
such a copy: the faces are the clip's own, only the frame size (what the detector and the
drawing handle) changes. The copy is not kept in the repository.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
from tqdm import tqdm


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None
    if w < 16 or h < 16:
        raise argparse.ArgumentTypeError(f"frames of at least 16x16, got {text!r}")
    return w, h


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", required=True, help="the clip to copy")
    p.add_argument("--size", required=True, type=_size, help="frame size of the copy, WxH")
    p.add_argument("--out", required=True, help="the copy (.mp4)")
    args = p.parse_args()
    capture = cv2.VideoCapture(args.source)
    if not Path(args.source).is_file() or not capture.isOpened():
        print(f"error: cannot read {args.source} as a video", file=sys.stderr)
        return 2
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    writer = cv2.VideoWriter(args.out, cv2.VideoWriter_fourcc(*"mp4v"), fps, args.size)
    if not writer.isOpened():
        print(f"error: cannot write {args.out}", file=sys.stderr)
        return 2
    frames = 0
    with tqdm(total=total, desc="resize", unit="frame") as bar:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            enlarge = args.size[0] * args.size[1] > frame.shape[0] * frame.shape[1]
            interp = cv2.INTER_CUBIC if enlarge else cv2.INTER_AREA
            writer.write(cv2.resize(frame, args.size, interpolation=interp))
            frames += 1
            bar.update(1)
    writer.release()
    capture.release()
    if not frames:
        print(f"error: no frames read from {args.source}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {frames} frames, {args.size[0]}x{args.size[1]}, {fps:.2f} fps")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
