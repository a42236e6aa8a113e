"""One frame's faces as the outlets send them: a JSON-ready dict and its text, built once.

:class:`FramePacket` is what every outlet's ``send`` takes: the frame's result, its size
and capture time, and the JSON record and text, each made on first use and then shared by
every outlet (WebSocket and JSON lines send the same text).

JSON (WebSocket and JSON lines), one object per frame::

    {"frame": 12, "t": 8123.456789, "faces": [
      {"id": 3, "box": [x1, y1, x2, y2], "score": 0.97, "expression": "Happiness",
       "probs": {"Neutral": 0.01, ...}, "valence": 0.41, "arousal": 0.12,
       "aus": {"AU01": 0.08, ...}, "active_aus": ["AU12"]}]}

``t`` is the capture time in seconds on LSL's clock (see :mod:`.meta`); boxes are frame
pixels, clipped to the frame. A head the model does not have trained gives ``null``
(``expression``/``probs``, ``valence``/``arousal``, ``aus``/``active_aus``).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from liveaffect.runtime.streams.meta import StreamMeta
from liveaffect.types import FaceResult, FrameResult

BOX_DIGITS = 1
VALUE_DIGITS = 4


def clipped_box(face: FaceResult, frame_size: tuple[int, int] | None) -> list[float]:
    """The face box in pixels, clipped to ``frame_size`` (width, height) when known."""
    box = np.asarray(face.detection.xyxy, np.float64).tolist()
    if frame_size is not None:  # as np.clip(box, 0, size): NaN stays NaN
        w, h = frame_size
        box = [min(max(v, 0.0), hi) for v, hi in zip(box, (w, h, w, h), strict=True)]
    return [round(v, BOX_DIGITS) for v in box]


def _values(array) -> list[float] | None:
    if array is None:
        return None
    # Python floats (exact float64 values) round as numpy scalars do, many times faster
    values = np.asarray(array, np.float64).ravel().tolist()
    return [round(v, VALUE_DIGITS) if math.isfinite(v) else None for v in values]


def face_record(
    face: FaceResult, meta: StreamMeta, frame_size: tuple[int, int] | None = None
) -> dict[str, Any]:
    """One face as a JSON-ready dict (see the module docstring)."""
    pred = face.prediction
    probs, va, aus = _values(pred.expr_probs), _values(pred.va), _values(pred.au_probs)
    return {
        "id": int(face.track_id),
        "box": clipped_box(face, frame_size),
        "score": round(float(face.detection.score), VALUE_DIGITS),
        "expression": meta.expressions[int(np.argmax(pred.expr_probs))] if probs else None,
        "probs": dict(zip(meta.expressions, probs, strict=True)) if probs else None,
        "valence": va[0] if va else None,
        "arousal": va[1] if va else None,
        "aus": dict(zip(meta.aus, aus, strict=True)) if aus else None,
        "active_aus": (
            [
                n
                for n, p, t in zip(meta.aus, aus, meta.au_thresholds, strict=True)
                if p is not None and p >= t
            ]
            if aus
            else None
        ),
    }


def frame_record(
    result: FrameResult, meta: StreamMeta, frame_size: tuple[int, int] | None = None
) -> dict[str, Any]:
    """One frame as a JSON-ready dict: ``{"frame", "t", "faces": [...]}``."""
    return {
        "frame": int(result.index),
        "t": round(meta.capture_time_s(result.read_at_ms), 6),
        "faces": [face_record(f, meta, frame_size) for f in result.faces],
    }


def frame_size_of(frame_bgr) -> tuple[int, int] | None:
    """(width, height) of an image, or None for a missing or empty one."""
    if frame_bgr is None or getattr(frame_bgr, "ndim", 0) < 2 or frame_bgr.size == 0:
        return None
    return int(frame_bgr.shape[1]), int(frame_bgr.shape[0])


class FramePacket:
    """One frame for the outlets; the JSON record and text are built once, on first use.

    Args:
        result: the frame's faces.
        meta: model, labels and clock.
        frame_size: (width, height) to clip boxes to, or None.

    Attributes:
        t: the capture time in seconds on LSL's clock.
    """

    def __init__(
        self, result: FrameResult, meta: StreamMeta, frame_size: tuple[int, int] | None = None
    ) -> None:
        self.result, self.meta, self.frame_size = result, meta, frame_size
        self.t = meta.capture_time_s(result.read_at_ms)
        self._record: dict[str, Any] | None = None
        self._text: str | None = None

    @property
    def record(self) -> dict[str, Any]:
        """:func:`frame_record` of the frame."""
        if self._record is None:
            self._record = frame_record(self.result, self.meta, self.frame_size)
        return self._record

    @property
    def json_text(self) -> str:
        """The record as compact JSON (no newline)."""
        if self._text is None:
            self._text = json.dumps(self.record, separators=(",", ":"))
        return self._text
