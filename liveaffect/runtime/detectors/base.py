"""What every face detector shares: the error type and frame checks."""

from __future__ import annotations

import numpy as np


class DetectorError(RuntimeError):
    """A face detector cannot be created (unknown name, missing weights or package)."""


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
