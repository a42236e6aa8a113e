"""Train a multi-task model bundle (expression, valence/arousal, action units).

Examples:
  python -m liveaffect train --data /data/Aff-Wild2 --out runs/affwild2
  python -m liveaffect train --config configs/default_model.yaml --out runs/default

Running the same command again resumes after the last finished epoch.
"""

from __future__ import annotations

import argparse
import dataclasses
import os

from liveaffect.commands.outputs import check_output_folder
from liveaffect.errors import CliError
from liveaffect.hardware import prefer_onednn


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        action="append",
        metavar="ROOT",
        help="dataset root (Aff-Wild2 layout, MTL file, class folders or CSV manifest; "
        "local or gs://); repeat for several sources. Overrides the config's data.train",
    )
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder (created)")
    p.add_argument("--config", metavar="FILE", help="YAML config (see configs/)")
    p.add_argument("--epochs", type=int, help="override train.epochs")
    p.add_argument("--batch-size", type=int, help="override train.batch_size")
    p.add_argument(
        "--backbone",
        help="override model.backbone: efficientnetv2s, efficientnetv2b0, mobilenetv3small, "
        "cnn, tiny",
    )
    p.add_argument("--image-size", type=int, help="override model.input_size (pixels)")
    p.add_argument(
        "--weights",
        metavar="PATH|imagenet",
        help="backbone weights: a local file, or 'imagenet' (needs a download)",
    )
    p.add_argument(
        "--members",
        type=int,
        default=1,
        help="train K ensemble members on disjoint subsets and save a bundle averaging them",
    )
    p.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bars: per epoch only Keras' summary line and the validation line",
    )


def _config(args: argparse.Namespace):
    from liveaffect.training.config import RunConfig, SourceSpec, load_config

    try:
        cfg = load_config(args.config) if args.config else RunConfig()
        if args.data:
            cfg.data.train = [SourceSpec(path=d) for d in args.data]
            if not args.config:
                cfg.data.validation = []
        overrides = {
            "model": {
                "backbone": args.backbone,
                "input_size": args.image_size,
                "weights": args.weights,
            },
            "train": {"epochs": args.epochs, "batch_size": args.batch_size},
        }
        for section, values in overrides.items():
            changes = {k: v for k, v in values.items() if v is not None}
            if changes:
                setattr(cfg, section, dataclasses.replace(getattr(cfg, section), **changes))
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    if not cfg.data.train:
        raise CliError("no training data: pass --data ROOT or a --config with data.train")
    for source in [*cfg.data.train, *cfg.data.validation]:  # before TensorFlow starts
        if "://" not in source.path and not os.path.exists(source.path):
            raise CliError(f"dataset root {source.path} does not exist")
    if args.members < 1:
        raise CliError(f"--members must be >= 1, got {args.members}")
    check_output_folder(args.out, "--out")  # before the data is read and TensorFlow starts
    return cfg


def run(args: argparse.Namespace) -> int:
    prefer_onednn()  # before TensorFlow loads: faster training on AVX2-only CPUs
    cfg = _config(args)
    from liveaffect.runtime.quiet import quiet_native_stderr

    with quiet_native_stderr():  # TensorFlow's start-up lines read as errors on a CPU
        import tensorflow  # noqa: F401
    from liveaffect.data.io import DatasetError
    from liveaffect.model.mtl import ModelError
    from liveaffect.training.train import TrainingError, command_line, train

    try:
        if args.members > 1:
            from liveaffect.training.ensemble import train_ensemble

            train_ensemble(
                cfg,
                args.out,
                args.members,
                command=command_line(),
                verbose=2 if args.quiet else "auto",
                progress=not args.quiet,
            )
        else:
            train(
                cfg,
                args.out,
                command=command_line(),
                verbose=2 if args.quiet else "auto",
                progress=not args.quiet,
            )
    except (DatasetError, ModelError, TrainingError) as exc:
        raise CliError(str(exc)) from exc
    return 0
