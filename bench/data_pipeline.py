"""Throughput of the training input pipeline (tf.data) in images per second.

    python bench/data_pipeline.py --data ../shared/data/fer2013/train --size 48 --color gray

Measures three passes over the same records: decoding from files (parallel decode +
the shared face preprocessing), the second epoch from the in-memory cache, and both
with training augmentation. Prints a table and writes JSON with --json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="dataset root the trainer reads")
    p.add_argument("--size", type=int, default=48, help="model input size (pixels)")
    p.add_argument("--color", default="gray", choices=("gray", "rgb", "bgr"))
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--limit", type=int, default=10000, help="records used (0: all)")
    p.add_argument("--json", help="write results here")
    args = p.parse_args()

    from liveaffect.data.dataset import AugmentConfig, make_dataset
    from liveaffect.data.loaders import load_records
    from liveaffect.preprocess import PreprocessSpec

    records = load_records(args.data)
    if args.limit:
        records = records[: args.limit]
    spec = PreprocessSpec(input_size=(args.size, args.size), color=args.color)
    results = {"records": len(records), "input": list(spec.input_shape), "cpu": os.cpu_count()}

    def timed(ds) -> float:
        start, n = time.perf_counter(), 0
        for images, _ in ds:
            n += int(images.shape[0])
        return n / (time.perf_counter() - start)

    plain = make_dataset(records, spec, args.batch_size, training=False, cache="memory")
    results["decode_from_files_img_s"] = round(timed(plain), 1)
    results["from_cache_img_s"] = round(timed(plain), 1)
    aug = make_dataset(
        records, spec, args.batch_size, training=True, augment=AugmentConfig(), cache="memory"
    )
    results["decode_shuffle_augment_img_s"] = round(timed(aug), 1)
    results["cache_shuffle_augment_img_s"] = round(timed(aug), 1)
    for key, value in results.items():
        print(f"{key:<32} {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
