"""Plain frozen dataclasses that flow through the live pipeline, and the role protocols.

A frame moves: source -> detector -> tracker -> crops -> engine -> smoother -> sinks.
Each stage takes and returns these values, so the loop is testable without a camera:
the detector gives :class:`Detection` s, and from the tracker on one :class:`FaceResult`
per face flows to the sinks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Detection:
    """One detected face in frame pixel coordinates.

    Attributes:
        xyxy: (x1, y1, x2, y2) box in pixels of the frame it was found in.
        score: detector confidence in [0, 1].
        keypoints: optional (K, 2) array of landmark pixels (eyes, nose, ...).
    """

    xyxy: tuple[float, float, float, float]
    score: float = 1.0
    keypoints: np.ndarray | None = field(default=None, compare=False)

    @property
    def width(self) -> float:
        return self.xyxy[2] - self.xyxy[0]

    @property
    def height(self) -> float:
        return self.xyxy[3] - self.xyxy[1]

    @property
    def center(self) -> tuple[float, float]:
        return ((self.xyxy[0] + self.xyxy[2]) / 2.0, (self.xyxy[1] + self.xyxy[3]) / 2.0)


@dataclass(frozen=True)
class AffectPrediction:
    """The model's output for one face. A head that is not trained is ``None``.

    Attributes:
        expr_probs: (8,) probabilities in EXPRESSIONS order, or None.
        va: (2,) valence, arousal in [-1, 1], or None.
        au_probs: (12,) probabilities in AUS order, or None.
    """

    expr_probs: np.ndarray | None = None
    va: np.ndarray | None = None
    au_probs: np.ndarray | None = None


@dataclass(frozen=True)
class FaceResult:
    """One face in one frame: the record that flows tracker -> engine -> smoother -> sinks.

    The tracker makes it (``prediction`` None), the loop adds the engine's prediction,
    the smoother replaces that with the track's smoothed one; sinks receive it.

    Attributes:
        track_id: the stable id the tracker gave the face (never reused).
        detection: the detected box in frame pixels.
        prediction: the model's output for the face, or None before the engine ran.
    """

    track_id: int
    detection: Detection
    prediction: AffectPrediction | None = None


@dataclass(frozen=True)
class FrameResult:
    """The outcome of one frame.

    Attributes:
        index: 0-based frame number from the source.
        timestamp_ms: a file's frame: its position in the video; a camera's or stream's:
            its capture time as Unix time; both in milliseconds.
        faces: one FaceResult per tracked face in this frame.
        timings_ms: time spent per stage on this frame (read, detect, ...).
        read_at_ms: when the source read the frame (a camera: captured it),
            ``time.monotonic()`` in ms: the stream outlets' clock (``Frame.read_at_ms``).
    """

    index: int
    timestamp_ms: float
    faces: tuple[FaceResult, ...] = ()
    timings_ms: dict[str, float] = field(default_factory=dict, compare=False)
    read_at_ms: float = 0.0


@dataclass(frozen=True)
class Frame:
    """A frame as read from a source.

    Attributes:
        index: 0-based frame number.
        timestamp_ms: a file's frame: its position in the video (ms from the start); a
            camera's or stream's: when it was captured, Unix time in ms.
        image_bgr: the picture.
        capture_ms: how long the read took.
        read_at_ms: when the reader got it, ``time.monotonic()`` in ms (latency; the
            stream outlets' capture time).
    """

    index: int
    timestamp_ms: float
    image_bgr: np.ndarray
    capture_ms: float = 0.0
    read_at_ms: float = 0.0


@runtime_checkable
class FaceDetector(Protocol):
    """Finds faces in a BGR frame."""

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]: ...


@runtime_checkable
class AffectEngine(Protocol):
    """Scores a batch of preprocessed face crops with the multi-task model."""

    def predict(self, crops: np.ndarray) -> list[AffectPrediction]: ...


@runtime_checkable
class Sink(Protocol):
    """Receives every processed frame (window, video writer, CSV ...).

    Subclass it to inherit the defaults of its two flags.

    Attributes:
        draws: True for sinks that show or record the drawn frame (boxes, labels);
            the others receive the frame as read.
        stop_requested: set by a sink when the user asked to stop (``q`` in a window);
            the loop ends after the current frame.
        paused: while set, the loop shows the sink the same frame again (window pause).
        holds: after a still image, the loop shows the sink its one frame again (the keys
            still work) until the sink asks to stop (a window; the others: False).
        view: what a drawing sink's canvas shows (``runtime.dashboard.View``); None: the
            default view.
        error: set by ``close()`` when what the sink wrote turns out incomplete (a video
            that cannot be read back whole); the run then reports an error.
    """

    draws: bool = False
    stop_requested: bool = False
    paused: bool = False
    holds: bool = False
    view: Any = None
    error: str | None = None

    def write(self, frame_bgr: np.ndarray, result: FrameResult) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class FrameSource(Protocol):
    """Frames in order from a camera, video file or stream; a context manager.

    Attributes:
        fps: the source's frame rate (0 when it does not say).
        error: None, or why a stream stopped delivering frames before its end
            (the loop reports the run as failed).
    """

    fps: float
    error: str | None

    def __iter__(self) -> Iterator[Frame]: ...

    def close(self) -> None: ...
