"""Shot-cut detection: an abrupt change of the whole frame ends every face track.

In an edited video the person at the same place after a cut is usually someone else, so
the tracker must not carry ids across it. A cut is detected when the colour histogram of
the whole (downscaled) frame changes abruptly: the Bhattacharyya distance
(:func:`cv2.compareHist`) between the hue-saturation histograms of consecutive frames
exceeds ``threshold``. On the shared clips consecutive frames of one shot are 0.04-0.11
apart (camera motion, a hand over the face, a walking crowd) and the one cut (a face, then
a cartoon, in ``pyfeat_face_noface.mov``) is 0.93 and 1.0; the default threshold is 0.5.
A cut between two shots of very similar colour (the same studio) can be missed, and a
camera flash can be taken for a cut (the faces then just get new ids).
"""

from __future__ import annotations

import cv2
import numpy as np

HIST_BINS = (16, 8)  # hue, saturation
THUMB_WIDTH = 64


class ShotCutDetector:
    """Says, frame after frame, whether the frame starts a new shot.

    Args:
        threshold: Bhattacharyya distance in (0, 1] between consecutive frames' colour
            histograms above which the frame is a cut.

    Example:
        >>> cuts = ShotCutDetector()
        >>> if cuts.update(frame_bgr):  # doctest: +SKIP
        ...     tracker.reset()
    """

    def __init__(self, threshold: float = 0.5) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        self.threshold = float(threshold)
        self._previous: np.ndarray | None = None
        self.last_distance = 0.0
        self.cuts = 0

    def update(self, frame_bgr: np.ndarray | None) -> bool:
        """True when ``frame_bgr`` differs abruptly from the previous frame (a shot cut).

        The first frame is not a cut; an empty frame is skipped (not a cut, not remembered).
        """
        if frame_bgr is None or frame_bgr.size == 0 or frame_bgr.ndim != 3:
            return False
        hist = colour_histogram(frame_bgr)
        previous, self._previous = self._previous, hist
        if previous is None:
            return False
        self.last_distance = float(cv2.compareHist(previous, hist, cv2.HISTCMP_BHATTACHARYYA))
        is_cut = self.last_distance > self.threshold
        self.cuts += is_cut
        return is_cut

    def reset(self) -> None:
        """Forget the previous frame (the next frame is not a cut)."""
        self._previous = None


def colour_histogram(frame_bgr: np.ndarray) -> np.ndarray:
    """Normalised hue-saturation histogram of a small copy of the frame."""
    h, w = frame_bgr.shape[:2]
    size = (THUMB_WIDTH, max(1, round(h * THUMB_WIDTH / max(w, 1))))
    step = max(1, w // (2 * THUMB_WIDTH))  # every step-th pixel first: area-averaging a
    # 1080p frame down to 64 px costs ~3 ms, a 137 px wide sample of it a tenth of that
    thumb = cv2.resize(frame_bgr[::step, ::step, :3], size, interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(np.ascontiguousarray(thumb), cv2.COLOR_BGR2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, list(HIST_BINS), [0, 180, 0, 256])
    return cv2.normalize(hist, hist).astype(np.float32)
