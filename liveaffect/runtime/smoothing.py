"""Per-face temporal smoothing: the seed's self-ensemble.

Each track keeps a ``deque(maxlen=N)`` of its last N predictions and reports their
mean, head by head. State is keyed by track id (ids are never reused), so two
people are never averaged together. The smoother forgets a track by itself once it
has been absent for ``max_idle`` frames; as ids are never reused, forgetting only
frees memory and never changes an output, as long as ``max_idle`` is at least the
tracker's ``max_lost`` (both default to 15), so that a face the detector missed for a
few frames comes back to its own history.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence

import numpy as np

from liveaffect.types import AffectPrediction, FaceResult

_HEADS = ("expr_probs", "va", "au_probs")


class PredictionSmoother:
    """Average of the last ``window`` predictions of every track.

    Args:
        window: how many predictions to average (``1`` turns smoothing off).
        max_idle: frames a track may go without a prediction before its history is
            forgotten.

    Raises:
        ValueError: ``window`` < 1 or ``max_idle`` < 0.
    """

    def __init__(self, window: int = 3, max_idle: int = 15) -> None:
        if int(window) < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        if int(max_idle) < 0:
            raise ValueError(f"max_idle must be >= 0, got {max_idle}")
        self.window = int(window)
        self.max_idle = int(max_idle)
        self._history: dict[int, deque[AffectPrediction]] = {}
        self._idle: dict[int, int] = {}

    @property
    def track_ids(self) -> set[int]:
        """Ids that currently hold a history."""
        return set(self._history)

    def update(self, faces: Sequence[FaceResult]) -> list[FaceResult]:
        """Add this frame's raw predictions and return the smoothed faces.

        Args:
            faces: this frame's faces with raw (unsmoothed) predictions.

        Returns:
            The same faces, in order, with each prediction replaced by the mean of
            that track's last ``window`` predictions.
        """
        seen = {f.track_id for f in faces}
        for track_id in list(self._idle):
            if track_id not in seen:
                self._idle[track_id] += 1
                if self._idle[track_id] > self.max_idle:
                    self.forget([track_id])
        out = []
        for face in faces:
            history = self._history.setdefault(face.track_id, deque(maxlen=self.window))
            self._idle[face.track_id] = 0
            history.append(face.prediction)
            out.append(
                FaceResult(
                    track_id=face.track_id,
                    detection=face.detection,
                    prediction=mean_prediction(history),
                )
            )
        return out

    def forget(self, track_ids: Iterable[int]) -> None:
        """Drop the history of tracks that will not come back."""
        for track_id in track_ids:
            self._history.pop(track_id, None)
            self._idle.pop(track_id, None)

    def reset(self) -> None:
        """Forget everything."""
        self._history.clear()
        self._idle.clear()


def mean_prediction(predictions: Iterable[AffectPrediction]) -> AffectPrediction:
    """Head-by-head mean of several predictions; a head that is None everywhere stays None."""
    preds = list(predictions)
    if len(preds) == 1:
        return preds[0]
    values = {}
    for head in _HEADS:
        arrays = [getattr(p, head) for p in preds if getattr(p, head) is not None]
        values[head] = (
            np.mean(np.stack(arrays), axis=0).astype(np.float32, copy=False) if arrays else None
        )
    return AffectPrediction(**values)
