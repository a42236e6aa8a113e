"""Model-only speed on any Keras backend and device: inference at several batch sizes and
one training step, for a GPU as well as this CPU.

    python bench/model_throughput.py --bundle final_model --random-model efficientnetv2s:224 \
        --batches 1,32 --train configs/default_model.yaml --json bench/results/FILE.json

    # on a machine with a GPU but no TensorFlow (JAX or PyTorch installed instead):
    KERAS_BACKEND=jax python bench/model_throughput.py ...

Only Keras and the project's backend-independent model code are used (the builder, the
custom layers, the masked losses), so the same models run on TensorFlow here and on JAX
or PyTorch where TensorFlow is missing. Rows:

* **inference**: ``predict_on_batch`` (compiled by the backend, outputs copied back to
  the host) for each batch of faces; a bundle runs every face as its card's test-time
  views (the default model: 6 rows per face), as the app does. Median of ``--repeats``
  calls after warm-up.
* **training**: one optimisation step (``train_on_batch``: forward, the three masked
  losses with their weights, backward, AdamW) on a random batch of the config's batch
  size, in the config's mixed precision as ``auto`` resolves it (bfloat16 on a GPU).
  Random labels cost what real ones cost; the input pipeline (decoding, augmentation,
  degradations) is not timed, so a real epoch is slower wherever that pipeline limits.

The app's own engine on a CPU is TFLite, which ``python -m liveaffect bench`` times;
this script answers how fast the model itself runs on an accelerator.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from _results import write_result


def _median_ms(fn, repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def _device() -> str:
    """The accelerator the backend computes on, in words ("cpu" when none)."""
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "jax":
            import jax

            dev = jax.devices()[0]
            return f"{dev.platform}: {getattr(dev, 'device_kind', dev)}"
        if backend == "torch":
            import torch

            return f"cuda: {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "cpu"
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            return f"gpu: {gpus[0].name}" if gpus else "cpu"
    except Exception as exc:  # a backend without a device query still runs
        return f"unknown ({type(exc).__name__})"
    return "unknown"


def _inference_rows(name: str, model, views: int, shape, batches, repeats: int) -> list[dict]:
    import numpy as np

    rows = []
    for faces in batches:
        x = np.random.default_rng(0).uniform(0, 255, (faces * views, *shape)).astype(np.float32)
        ms = _median_ms(lambda x=x: model.predict_on_batch(x), repeats)
        rows.append(
            {
                "model": name,
                "faces_per_call": faces,
                "views": views,
                "rows_per_call": faces * views,
                "ms_per_call": round(ms, 3),
                "faces_per_s": round(faces / ms * 1000, 1),
            }
        )
        print(
            f"infer {name:>28}: {faces:3d} faces x {views} views: {ms:8.3f} ms/call, "
            f"{faces / ms * 1000:9.1f} faces/s",
            flush=True,
        )
    return rows


def _training_row(config: str, batch: int | None, steps: int, precision: str) -> dict:
    import keras
    import numpy as np

    from liveaffect.labels import NUM_AUS, NUM_EXPRESSIONS
    from liveaffect.model.losses import MaskedAULoss, MaskedCCCLoss, MaskedExpressionLoss
    from liveaffect.model.mtl import build_mtl_model
    from liveaffect.training.config import load_config

    cfg = load_config(config)
    policy = "float32" if precision == "none" else f"mixed_{precision}"
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = build_mtl_model(dataclasses.replace(cfg.model, weights=None))
        opt = keras.optimizers.AdamW(cfg.train.learning_rate, weight_decay=cfg.train.weight_decay)
        losses = {
            "expr": MaskedExpressionLoss(label_smoothing=cfg.train.label_smoothing),
            "va": MaskedCCCLoss(),
            "au": MaskedAULoss(),
        }
        weights = {k: float(cfg.train.loss_weights[k]) for k in losses}
        model.compile(optimizer=opt, loss=losses, loss_weights=weights)
        n = int(batch or cfg.train.batch_size)
        rng = np.random.default_rng(0)
        side, channels = cfg.model.input_size, cfg.model.channels
        x = rng.uniform(0, 255, (n, side, side, channels)).astype(np.float32)
        y = {
            "expr": rng.integers(-1, NUM_EXPRESSIONS, (n,)).astype(np.float32),
            "va": rng.uniform(-1, 1, (n, 2)).astype(np.float32),
            "au": rng.integers(-1, 2, (n, NUM_AUS)).astype(np.float32),
        }
        ms = _median_ms(lambda: model.train_on_batch(x, y), steps, warmup=3)
        params = model.count_params()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    row = {
        "config": config,
        "backbone": cfg.model.backbone,
        "input_size": cfg.model.input_size,
        "widths": list(cfg.model.widths),
        "batch_size": n,
        "precision": precision,
        "ms_per_step": round(ms, 2),
        "images_per_s": round(n / ms * 1000, 1),
        "params_m": round(params / 1e6, 3),
    }
    print(
        f"train {config}: batch {n}, {precision}: {ms:8.2f} ms/step, {n / ms * 1000:9.1f} images/s",
        flush=True,
    )
    return row


def _random_model(spec: str):
    """``BACKBONE:SIZE`` -> (name, model, input shape) with random weights."""
    from liveaffect.model.mtl import build_mtl_model

    backbone, _, size = spec.partition(":")
    size = int(size or 224)
    color = "gray" if backbone in ("cnn", "tiny") else "rgb"
    model = build_mtl_model(backbone=backbone, input_size=size, color=color, weights=None)
    return f"{backbone} {size} (random)", model, tuple(model.inputs[0].shape[1:])


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--bundle", action="append", default=[], help="a bundle to time (repeatable)")
    p.add_argument(
        "--random-model",
        action="append",
        default=[],
        help="BACKBONE:SIZE with random weights, one view per face (repeatable)",
    )
    p.add_argument("--batches", default="1,32", help="faces per inference call, comma-separated")
    p.add_argument("--repeats", type=int, default=30, help="timed inference calls per batch")
    p.add_argument(
        "--train",
        action="append",
        default=[],
        help="a training config whose model's training step is timed (repeatable); "
        "CONFIG@BATCH times another batch size",
    )
    p.add_argument("--steps", type=int, default=10, help="timed training steps per config")
    p.add_argument(
        "--precision",
        choices=("auto", "none", "bfloat16", "float16"),
        default="auto",
        help="training precision (auto: bfloat16 on a GPU, or on a CPU with AVX512-BF16/AMX; "
        "float32 elsewhere, as train.mixed_precision: auto does)",
    )
    p.add_argument("--json", help="write results here")
    args = p.parse_args()
    batches = [int(b) for b in args.batches.split(",") if b.strip()]
    if not batches or min(batches) < 1:
        p.error("--batches needs positive integers")
    if not (args.bundle or args.random_model or args.train):
        p.error("nothing to time: give --bundle, --random-model or --train")

    import keras

    from liveaffect.bundle import BundleError, load_bundle
    from liveaffect.tta import card_tta

    device = _device()
    gpu = not device.startswith(("cpu", "unknown"))
    precision = args.precision
    if precision == "auto":
        from liveaffect.training.train import choose_precision

        precision = choose_precision("auto", gpu=gpu)
    print(f"keras {keras.__version__}, backend {keras.backend.backend()}, device {device}")

    inference = []
    for path in args.bundle:
        try:
            bundle = load_bundle(path)
        except BundleError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        views = card_tta(bundle.card).n_views
        shape = tuple(bundle.card.preprocess.input_shape)
        rows = _inference_rows(path, bundle.model, views, shape, batches, args.repeats)
        inference += rows
    for spec in args.random_model:
        name, model, shape = _random_model(spec)
        inference += _inference_rows(name, model, 1, shape, batches, args.repeats)
    training = []
    for item in args.train:
        config, _, batch = item.partition("@")
        training.append(_training_row(config, int(batch) if batch else None, args.steps, precision))
    if args.json:
        result = {
            "keras": keras.__version__,
            "backend": keras.backend.backend(),
            "device": device,
            "inference": inference,
            "training": training,
        }
        write_result(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
