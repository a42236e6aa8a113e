"""What every face detector shares: the error type and the empty-frame check."""

from __future__ import annotations

import numpy as np


class DetectorError(RuntimeError):
    """A face detector cannot be created (unknown name, missing weights or package)."""


def is_empty(frame: np.ndarray) -> bool:
    """True for frames with no pixels (nothing to detect in)."""
    frame = np.asarray(frame)
    return frame.ndim < 2 or frame.size == 0
