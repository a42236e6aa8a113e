"""Face crops scored per second through the app's inference engine.

    python bench/crop_throughput.py --model final_model --data ../shared/data/fer2013/test

Reads real face images, prepares them with the app's own preprocessing
(``liveaffect.preprocess.prepare_face``) and scores them with the engine the app
would pick (``--engine auto``), one face per call (a single-face webcam) and in
batches (several faces in one frame). Prints a table; ``--json`` writes the numbers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from _results import write_result


def _rate(fn, n_items: int, repeats: int) -> float:
    """Median items per second over ``repeats`` timed runs of ``fn`` (after one warm-up)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return n_items / statistics.median(times)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="final_model", help="bundle folder")
    p.add_argument("--data", required=True, help="face dataset (class folders, CSV...)")
    p.add_argument("--engine", default="auto", help="engine name, as the app's --engine")
    p.add_argument(
        "--no-tta",
        action="store_true",
        help="one view per face (default: the card's test-time views, as the app uses)",
    )
    p.add_argument("--limit", type=int, default=512, help="face images used")
    p.add_argument("--batches", default="1,4,16", help="faces per engine call to measure")
    p.add_argument("--repeats", type=int, default=5, help="timed passes (median reported)")
    p.add_argument("--json", help="write results here")
    args = p.parse_args()

    import cv2
    import numpy as np

    from liveaffect.bundle import load_bundle
    from liveaffect.data.loaders import load_records
    from liveaffect.engines import create_engine
    from liveaffect.preprocess import prepare_face
    from liveaffect.tta import TTA

    bundle = load_bundle(args.model)
    spec = bundle.card.preprocess
    faces = [cv2.imread(r.path, cv2.IMREAD_COLOR) for r in load_records(args.data)[: args.limit]]
    n = len(faces)
    batches = [int(b) for b in args.batches.split(",") if b]
    engine = create_engine(
        bundle, args.engine, batch_size=max(batches), tta=False if args.no_tta else None
    )

    prepared = np.stack([prepare_face(face, spec) for face in faces])
    prep_rate = _rate(lambda: [prepare_face(face, spec) for face in faces], n, args.repeats)
    rows = []
    for b in batches:

        def score(b=b):
            for start in range(0, n, b):
                engine.predict(prepared[start : start + b])

        rate = _rate(score, n, args.repeats)
        # prepare + infer for one face is bounded by both: 1 / (1/prep + 1/infer)
        both = 1.0 / (1.0 / rate + 1.0 / prep_rate)
        rows.append({"faces_per_call": b, "crops_per_s": rate, "with_preprocess_per_s": both})

    views = getattr(engine, "tta", TTA()).describe()
    print(f"model {args.model} ({bundle.card.name}), engine {engine.name}, {n} real face crops")
    print(f"test-time views per face: {views}")
    print(f"preprocess (crop -> {spec.input_size[0]}x{spec.input_size[1]} {spec.color}): "
          f"{prep_rate:,.0f} crops/s")  # fmt: skip
    print("| faces per call | crops/s (infer) | crops/s (preprocess + infer) |")
    print("|---|---|---|")
    for r in rows:
        b, infer, both = r["faces_per_call"], r["crops_per_s"], r["with_preprocess_per_s"]
        print(f"| {b} | {infer:,.0f} | {both:,.0f} |")
    if args.json:
        result = {
            "model": args.model,
            "name": bundle.card.name,
            "engine": engine.name,
            "test_time_views": views,
            "faces": n,
            "preprocess_per_s": prep_rate,
            "rows": rows,
        }
        write_result(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
