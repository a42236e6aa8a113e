"""Milliseconds to draw the live view (boxes, tags, side panel, FPS) for one frame.

    python bench/draw_cost.py --size 1280x720 --faces 4

Frames come from a real clip, resized to ``--size``; the faces are ``--faces``
boxes of different sizes (one under 40 px) drifting over the frames, with seeded
random predictions for every head (the AU bars included, unless ``--card`` names a
model card whose AU head is untrained). ``Dashboard.draw`` draws into a reused
canvas, as the app does. Reports the median and 95th percentile of wall time and of
the drawing thread's CPU time (the latter is less disturbed by other jobs on a
shared machine); ``--json`` writes them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _results import write_result

CLIP = Path(__file__).resolve().parents[2] / "shared/data/videos/facenet_pytorch_video.mp4"


def _faces(n: int, width: int, height: int, k: int, rng):
    import numpy as np

    from liveaffect.types import AffectPrediction, Detection, FaceResult

    sides = [0.30, 0.22, 0.15, 0.09, 0.05, 0.04]
    faces = []
    for i in range(n):
        side = max(30.0, sides[i % len(sides)] * height)
        cx = width * (0.15 + 0.7 * ((i * 0.37 + k * 0.002) % 1.0))
        cy = height * (0.35 + 0.3 * ((i * 0.23) % 1.0))
        box = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side * 0.6)
        pred = AffectPrediction(
            rng.dirichlet(np.ones(8) * 0.5).astype(np.float32),
            np.clip(rng.normal(0, 0.4, 2), -1, 1).astype(np.float32),
            rng.random(12).astype(np.float32),
        )
        faces.append(FaceResult(i + 1, Detection(box, 0.9), pred))
    return tuple(faces)


def _card(path: str | None):
    from liveaffect.bundle import CARD_FILE, ModelCard

    if path is None:
        return ModelCard()  # every head trained: the most to draw
    card_path = Path(path) / CARD_FILE if Path(path).is_dir() else Path(path)
    return ModelCard.from_dict(json.loads(card_path.read_text()))


def _pct(values, q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", default=str(CLIP), help="video whose frames are drawn on")
    p.add_argument("--size", default="1280x720", help="frame size WIDTHxHEIGHT")
    p.add_argument("--faces", type=int, default=4, help="faces per frame")
    p.add_argument("--frames", type=int, default=300, help="frames timed (after 20 warm-up)")
    p.add_argument(
        "--card", default=None, help="bundle folder or card.json (default: every head trained)"
    )
    p.add_argument("--json", help="write results here")
    args = p.parse_args()

    import cv2
    import numpy as np

    from liveaffect.runtime.dashboard import Dashboard, View
    from liveaffect.types import FrameResult

    width, height = (int(v) for v in args.size.lower().split("x"))
    cap = cv2.VideoCapture(args.source)
    frames = []
    while len(frames) < 50:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(cv2.resize(frame, (width, height)))
    cap.release()
    if not frames:
        print(f"error: cannot read frames from {args.source}", file=sys.stderr)
        return 2
    card = _card(args.card)
    dash, rng = Dashboard(card), np.random.default_rng(0)
    canvas, wall, cpu = None, [], []
    timings = {s: 1.0 for s in ("read", "detect", "track", "preprocess", "infer", "smooth")}
    for k in range(args.frames + 20):
        result = FrameResult(k, 40.0 * k, _faces(args.faces, width, height, k, rng))
        t0, c0 = time.perf_counter(), time.thread_time()
        canvas = dash.draw(frames[k % len(frames)], result, View(), 60.0, timings, out=canvas)
        if k >= 20:
            wall.append((time.perf_counter() - t0) * 1000.0)
            cpu.append((time.thread_time() - c0) * 1000.0)
    out = {
        "size": [width, height],
        "canvas": [int(canvas.shape[1]), int(canvas.shape[0])],
        "faces": args.faces,
        "heads": list(dash.panel.heads),
        "frames": args.frames,
        "wall_ms_median": round(statistics.median(wall), 3),
        "wall_ms_p95": round(_pct(wall, 0.95), 3),
        "cpu_ms_median": round(statistics.median(cpu), 3),
        "cpu_ms_p95": round(_pct(cpu, 0.95), 3),
    }
    print(
        f"draw {width}x{height}, {args.faces} faces, heads {'/'.join(out['heads'])}, canvas "
        f"{out['canvas'][0]}x{out['canvas'][1]}: wall median {out['wall_ms_median']:.2f} ms "
        f"(p95 {out['wall_ms_p95']:.2f}), cpu median {out['cpu_ms_median']:.2f} ms "
        f"(p95 {out['cpu_ms_p95']:.2f})"
    )
    if args.json:
        write_result(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
