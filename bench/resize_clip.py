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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2
from tqdm import tqdm

from liveaffect.runtime.video import SourceError, open_source


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
    try:
        source = open_source(args.source)
    except SourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with source:
        fps = source.fps or 25.0
        writer = cv2.VideoWriter(args.out, cv2.VideoWriter_fourcc(*"mp4v"), fps, args.size)
        if not writer.isOpened():
            print(f"error: cannot write {args.out}", file=sys.stderr)
            return 2
        frames = 0
        with tqdm(total=source.frame_count or None, desc="resize", unit="frame") as bar:
            for frame in source:
                image = frame.image_bgr
                enlarge = args.size[0] * args.size[1] > image.shape[0] * image.shape[1]
                interp = cv2.INTER_CUBIC if enlarge else cv2.INTER_AREA
                writer.write(cv2.resize(image, args.size, interpolation=interp))
                frames += 1
                bar.update(1)
        writer.release()
    print(f"wrote {args.out}: {frames} frames, {args.size[0]}x{args.size[1]}, {fps:.2f} fps")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
