"""What every face detector shares: the error type, the empty-frame check, and how often
BlazeFace's full-range model searches the whole frame of a video."""

from __future__ import annotations

import numpy as np

BLAZEFACE_MODES = ("both", "short", "full", "auto")
"""BlazeFace's model choices (``--blazeface-model``; see ``blazeface.BlazeFaceDetector``),
here so that the commands' options need not import the detector (SciPy, OpenCV)."""

FULL_RANGE_EVERY = 4
"""BlazeFace ``"both"`` in a video: full range searches the whole frame on every this many
frames (and whenever short range misses a face; ``--full-range-every``). Measured on the
shared clips (``bench/README.md``, "Face detector models"): 4 found every face of every frame
that full range on every frame finds, and cut the detector's mean time on a one-person clip
by about a third."""


class DetectorError(RuntimeError):
    """A face detector cannot be created (unknown name, missing weights or package)."""


def is_empty(frame: np.ndarray) -> bool:
    """True for frames with no pixels (nothing to detect in)."""
    frame = np.asarray(frame)
    return frame.ndim < 2 or frame.size == 0
