"""Training steps per second of the ``cnn`` backbone at several channel widths.

    python bench/train_step.py --config configs/default_model.yaml \
        --widths "32,64,128,256;16,64,128,256;24,48,96,192;32,64,128,384"

Builds the config's model (head, input size, colour) with each set of widths and times
one optimisation step on a random batch: forward, a loss on the expression and
valence/arousal outputs, backward, AdamW update, with the config's mixed precision
(``--precision`` times another; ``auto`` resolves as training does), without XLA as
training runs on a CPU (``--jit-compile`` times it with XLA), and with TensorFlow's oneDNN
kernels asked for as ``python -m liveaffect train`` asks (``hardware.prefer_onednn``; set
``TF_ENABLE_ONEDNN_OPTS=0`` to time without them; the JSON records the setting).
The real training step also computes the masked multi-task loss and reads augmented
batches from tf.data, so absolute times are a little lower than a run's; the ratios
between widths are what this is for (how many epochs fit in the same time).
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


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="configs/default_model.yaml", help="training config")
    p.add_argument("--widths", required=True, help="width sets, ';' between sets, e.g. 32,64;16,64")
    p.add_argument("--steps", type=int, default=15, help="timed steps per width set")
    p.add_argument(
        "--precision",
        choices=("config", "auto", "none", "bfloat16"),
        default="config",
        help="train.mixed_precision to time (config: the config's; auto: bfloat16 on a GPU "
        "or a CPU with AVX512-BF16/AMX, else float32; none: float32)",
    )
    p.add_argument(
        "--jit-compile",
        action="store_true",
        help="compile the step with XLA (tf.function(jit_compile=True)); Keras leaves XLA off "
        "on a CPU-only machine, as training here does",
    )
    p.add_argument("--json", help="write results here")
    args = p.parse_args()

    from liveaffect.hardware import ONEDNN_ENV, prefer_onednn

    prefer_onednn()  # as the train command does, before TensorFlow loads
    import dataclasses

    import keras
    import numpy as np
    import tensorflow as tf

    from liveaffect.model.mtl import build_mtl_model
    from liveaffect.training.config import load_config
    from liveaffect.training.train import choose_precision

    cfg = load_config(args.config)
    asked = cfg.train.mixed_precision if args.precision == "config" else args.precision
    precision = choose_precision(asked, gpu=bool(tf.config.list_physical_devices("GPU")))
    if precision != "none":
        keras.mixed_precision.set_global_policy(f"mixed_{precision}")
    batch = cfg.train.batch_size
    h, w = cfg.model.input_size, cfg.model.input_size
    channels = 1 if cfg.model.color == "gray" else 3
    x = tf.constant(np.random.default_rng(0).uniform(0, 255, (batch, h, w, channels)), tf.float32)
    rows = []
    for text in args.widths.split(";"):
        widths = tuple(int(v) for v in text.split(",") if v)
        model = build_mtl_model(dataclasses.replace(cfg.model, widths=widths))
        opt = keras.optimizers.AdamW(cfg.train.learning_rate)

        @tf.function(jit_compile=args.jit_compile)
        def step(model=model, opt=opt):
            with tf.GradientTape() as tape:
                y = model(x, training=True)
                loss = sum(tf.reduce_mean(tf.cast(y[k], tf.float32) ** 2) for k in ("expr", "va"))
            grads = tape.gradient(loss, model.trainable_variables)
            opt.apply_gradients(zip(grads, model.trainable_variables, strict=True))

        for _ in range(3):  # trace and warm up
            step()
        times = []
        for _ in range(args.steps):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        ms = statistics.median(times) * 1000
        row = {
            "widths": list(widths),
            "ms_per_step": round(ms, 1),
            "images_per_s": round(batch / ms * 1000, 1),
            "params_m": round(model.count_params() / 1e6, 3),
        }
        rows.append(row)
        name = "-".join(map(str, widths))
        rate, params = row["images_per_s"], row["params_m"]
        print(f"widths {name:>16}: {ms:6.0f} ms/step (batch {batch}), {rate:6.0f} faces/s, "
              f"{params:.2f} M parameters", flush=True)  # fmt: skip
    if args.json:
        result = {
            "config": args.config,
            "batch_size": batch,
            "mixed_precision": precision,
            "mixed_precision_asked": asked,
            "jit_compile": args.jit_compile,
            "onednn": os.environ[ONEDNN_ENV],
            "rows": rows,
        }
        write_result(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
