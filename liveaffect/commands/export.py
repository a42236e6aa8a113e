"""Export a bundle's Keras model to TFLite (fp32, fp16, dynamic-range int8).

``python -m liveaffect export --model BUNDLE --tflite int8`` writes
``BUNDLE/model.int8.tflite`` and prints the largest output difference against the
Keras model on real face crops. The conversion itself is
:mod:`liveaffect.model.export`, which the live app's CPU engine also uses.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from liveaffect.commands.outputs import check_output_file
from liveaffect.errors import CliError
from liveaffect.hardware import prefer_onednn
from liveaffect.model.export import MODES


def sample_faces(
    spec: Any, source: str | None, n: int = 64, seed: int = 0
) -> tuple[np.ndarray, str]:
    """Up to ``n`` real face images from a dataset root, prepared for the model; images
    that cannot be decoded are skipped (as ``evaluate`` skips them) and counted."""
    from liveaffect.data.dataset import load_face
    from liveaffect.data.loaders import load_records
    from liveaffect.preprocess import normalize

    records = load_records(source)
    if not records:
        raise CliError(f"no face images found in {source}")
    rng = np.random.default_rng(seed)
    faces, unreadable = [], 0
    for i in rng.permutation(len(records)):
        try:
            faces.append(load_face(records[i].path, spec))
        except ValueError:  # not a decodable image
            unreadable += 1
            continue
        if len(faces) == n:
            break
    if not faces:
        raise CliError(f"--samples {source}: none of its {len(records)} images can be read")
    skipped = f" ({unreadable} unreadable skipped)" if unreadable else ""
    x = np.stack(faces).astype(np.float32)
    return normalize(x, spec), f"{len(faces)} faces from {source}{skipped}"


def random_faces(spec: Any, n: int = 16, seed: int = 0) -> tuple[np.ndarray, str]:
    """``n`` random-pixel images, normalised as the card says (as real faces would be)."""
    from liveaffect.preprocess import normalize

    pixels = np.random.default_rng(seed).uniform(0, 255, (n, *spec.input_shape))
    x = np.asarray(normalize(pixels.astype(np.float32), spec), np.float32)
    return x, f"{n} random-pixel images (pass --samples ROOT to compare on real faces)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, metavar="BUNDLE", help="bundle folder or .keras")
    p.add_argument("--tflite", choices=MODES, default="fp32", help="TFLite precision")
    p.add_argument(
        "--out",
        metavar="FILE",
        help="output file (default: BUNDLE/model.MODE.tflite; beside a .keras file NAME.keras: "
        "NAME.MODE.tflite)",
    )
    p.add_argument(
        "--samples",
        metavar="ROOT",
        help="faces to compare Keras and TFLite on (any dataset root the trainer reads); "
        "default: 16 random-pixel images, which the printed comparison names as such",
    )


def run(args: argparse.Namespace) -> int:
    prefer_onednn()  # before TensorFlow loads, as train and evaluate do
    from liveaffect.bundle import BundleError, load_bundle
    from liveaffect.model.export import ExportError, convert_tflite, max_differences, write_tflite

    model = Path(args.model)
    default = model / "model" if model.is_dir() else model.with_suffix("")  # best.keras: best
    out = Path(args.out) if args.out else default.with_name(f"{default.name}.{args.tflite}.tflite")
    if out.suffix.lower() != ".tflite":
        raise CliError(f"--out must end in .tflite: {out}")
    check_output_file(out, "--out")
    from liveaffect.runtime.quiet import quiet_native_stderr

    try:
        with quiet_native_stderr():  # TensorFlow's start-up lines read as errors on a CPU
            bundle = load_bundle(args.model)
    except BundleError as exc:
        raise CliError(str(exc)) from exc
    spec = bundle.card.preprocess
    if args.samples:  # read before converting: a bad --samples writes nothing
        from liveaffect.data.io import DatasetError

        try:
            x, what = sample_faces(spec, args.samples)
        except DatasetError as exc:
            raise CliError(str(exc)) from exc
    else:
        x, what = random_faces(spec)
    try:
        data = convert_tflite(bundle.model, args.tflite)
    except ExportError as exc:
        raise CliError(str(exc)) from exc
    write_tflite(data, out)  # whole or not at all; a full disk: one line naming --out, exit 1
    print(f"wrote {out} ({len(data) / 1e6:.1f} MB, {args.tflite})")
    with quiet_native_stderr():
        diffs = max_differences(bundle.model, out, x)
    print(f"largest |Keras - TFLite| on {what}:")
    for head, d in diffs.items():
        note = "" if bundle.card.trained(head) else " (head not trained)"
        print(f"  {head:<5} {d:.2e}{note}")
    return 0
