"""The live loop: frame -> detector -> tracker -> crops -> engine -> smoother -> sinks.

:class:`Pipeline` turns one :class:`~liveaffect.types.Frame` into a
:class:`~liveaffect.types.FrameResult`, timing every stage; :func:`run_loop` drives it
over a source, feeds the sinks, measures a rolling FPS and returns a
:class:`RunSummary`. Nothing here opens a camera or loads a model, so the loop is
tested with a fake detector and a tiny model.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from liveaffect.preprocess import PreprocessSpec, prepare_batch, to_bgr
from liveaffect.runtime.dashboard import Dashboard, StageMeans, View
from liveaffect.runtime.shotcut import ShotCutDetector
from liveaffect.runtime.sinks import SinkError
from liveaffect.runtime.smoothing import PredictionSmoother
from liveaffect.runtime.timing import STAGES, StageTimer
from liveaffect.runtime.tracker import IouTracker
from liveaffect.runtime.video import cut_short
from liveaffect.types import (
    AffectEngine,
    Detection,
    FaceDetector,
    FaceResult,
    Frame,
    FrameResult,
    FrameSource,
    Sink,
)


def _visible(det: Detection, width: int, height: int) -> bool:
    x1, y1, x2, y2 = det.xyxy
    if not np.all(np.isfinite(det.xyxy)):
        return False
    return min(x2, width) - max(x1, 0) >= 1 and min(y2, height) - max(y1, 0) >= 1


class Pipeline:
    """Everything that happens to one frame.

    Args:
        detector: finds the faces.
        engine: scores all faces of a frame in one batch.
        spec: how crops are prepared (the bundle card's ``preprocess``).
        tracker: gives faces stable ids (a new :class:`IouTracker` if None).
        smoother: per-track averaging (a 3-frame :class:`PredictionSmoother` if None).
        cuts: shot-cut detection; every track ends at a cut (a new
            :class:`ShotCutDetector` if None; ``False`` turns it off).
    """

    def __init__(
        self,
        detector: FaceDetector,
        engine: AffectEngine,
        spec: PreprocessSpec,
        tracker: IouTracker | None = None,
        smoother: PredictionSmoother | None = None,
        cuts: ShotCutDetector | bool | None = None,
    ) -> None:
        self.detector = detector
        if callable(getattr(detector, "reset", None)):
            detector.reset()  # a detector that follows faces between frames starts afresh
        self.engine = engine
        self.spec = spec
        self.tracker = tracker or IouTracker()
        self.smoother = smoother or PredictionSmoother(window=3)
        self.cuts = ShotCutDetector() if cuts is None else (cuts or None)

    def process(self, frame: Frame) -> FrameResult:
        """Detect, track, score and smooth every face of ``frame``.

        Grey and 4-channel frames are converted to BGR; an empty frame has no faces.
        """
        located = self.locate(frame)
        with located.timer.stage("infer"):
            predictions = self.engine.predict(located.crops) if located.faces else []
        return self.finish(located, predictions)

    def locate(self, frame: Frame) -> LocatedFrame:
        """The stages before the model: detect, track and crop the faces of ``frame``.

        :meth:`process` is ``finish(locate(frame), engine.predict(crops))``; batch analysis
        calls the two halves itself to score the faces of several frames in one engine
        call. Frames must be located in order and finished in the same order.
        """
        timer = StageTimer(read=frame.capture_ms)
        image = frame.image_bgr
        with timer.stage("detect"):
            if image is None or image.size == 0:
                detections: list[Detection] = []
            else:
                image = to_bgr(image)
                h, w = image.shape[:2]
                detections = [d for d in self.detector.detect(image) if _visible(d, w, h)]
        with timer.stage("track"):
            if self.cuts is not None and image is not None and self.cuts.update(image):
                self.tracker.reset()  # a new shot: whoever is there now is someone new
            faces = self.tracker.update(detections)
        with timer.stage("preprocess"):
            crops = prepare_batch(image, [f.detection.xyxy for f in faces], self.spec)
        return LocatedFrame(frame, tuple(faces), crops, timer)

    def finish(self, located: LocatedFrame, predictions: Sequence) -> FrameResult:
        """Smooth the model's ``predictions`` (one per face of ``located``) into the result."""
        faces = located.faces
        if len(predictions) != len(faces):
            raise RuntimeError(
                f"engine returned {len(predictions)} predictions for {len(faces)} faces"
            )
        timer = located.timer
        with timer.stage("smooth"):
            scored = [replace(f, prediction=p) for f, p in zip(faces, predictions, strict=True)]
            smoothed = self.smoother.update(scored)
        frame = located.frame
        return FrameResult(
            index=frame.index,
            timestamp_ms=frame.timestamp_ms,
            faces=tuple(smoothed),
            timings_ms=timer.ms,
            read_at_ms=frame.read_at_ms,
        )


@dataclass
class LocatedFrame:
    """A frame after detection and tracking, waiting for the model (``Pipeline.locate``).

    Attributes:
        frame: the frame as read.
        faces: its faces with their ids (no prediction yet), in detection order.
        crops: the prepared model inputs, one per face, ``(N, H, W, C)``.
        timer: the frame's stage timings so far.
    """

    frame: Frame
    faces: tuple[FaceResult, ...]
    crops: np.ndarray
    timer: StageTimer


class FpsMeter:
    """Frames per second over the last ``window`` frames."""

    def __init__(self, window: int = 30) -> None:
        self._ticks: deque[float] = deque(maxlen=max(2, int(window)))

    def tick(self, now_s: float | None = None) -> None:
        """Record that a frame finished (at ``now_s``, default: now)."""
        self._ticks.append(time.perf_counter() if now_s is None else now_s)

    def shift(self, seconds: float) -> None:
        """Move the recorded ticks ``seconds`` later (a pause must not lower the FPS)."""
        self._ticks = deque((t + seconds for t in self._ticks), maxlen=self._ticks.maxlen)

    @property
    def fps(self) -> float:
        """Rolling FPS (0 until two frames were seen)."""
        if len(self._ticks) < 2 or self._ticks[-1] <= self._ticks[0]:
            return 0.0
        return (len(self._ticks) - 1) / (self._ticks[-1] - self._ticks[0])


@dataclass
class RunSummary:
    """What a run did; ``str()`` gives the one line printed at the end.

    Attributes:
        frames: frames processed.
        faces: faces seen, summed over frames.
        frames_with_faces: frames with at least one face.
        track_ids: every face id that appeared.
        elapsed_s: wall time of the loop.
        stopped: why it ended: ``"end"`` (source exhausted), ``"quit"`` (window),
            ``"max_frames"``, ``"interrupt"`` (Ctrl-C), ``"sigterm"``/``"sighup"`` (asked
            to stop by a signal) or ``"error"`` (stream dropped, or an output could not
            be written).
        error: what went wrong, one sentence (``stopped == "error"``, or an output that
            turned out incomplete when it was closed).
        warning: what looks wrong but did not stop the run, one sentence (a file that
            ended before the frame count it announces), or None.
        stage_ms: total milliseconds per pipeline stage.
    """

    frames: int = 0
    faces: int = 0
    frames_with_faces: int = 0
    track_ids: set[int] = field(default_factory=set)
    elapsed_s: float = 0.0
    stopped: str = "end"
    error: str | None = None
    warning: str | None = None
    stage_ms: dict[str, float] = field(default_factory=dict)

    def count(self, result: FrameResult) -> None:
        """Add one processed frame: its faces, ids and per-stage milliseconds."""
        self.frames += 1
        self.faces += len(result.faces)
        self.frames_with_faces += bool(result.faces)
        self.track_ids.update(f.track_id for f in result.faces)
        for name, ms in result.timings_ms.items():
            self.stage_ms[name] = self.stage_ms.get(name, 0.0) + ms

    @property
    def mean_fps(self) -> float:
        return self.frames / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def mean_stage_ms(self) -> dict[str, float]:
        return {k: v / self.frames for k, v in self.stage_ms.items()} if self.frames else {}

    def __str__(self) -> str:
        return (
            f"summary: frames={self.frames} faces={self.faces} "
            f"frames_with_faces={self.frames_with_faces} ids={len(self.track_ids)} "
            f"mean_fps={self.mean_fps:.1f} time_s={self.elapsed_s:.1f} stop={self.stopped}"
        )


class _Drawing:
    """Draws each frame once per distinct view the drawing sinks ask for, into reused
    canvases, and times it (the ``draw`` stage)."""

    def __init__(self, dashboard: Dashboard | None, sinks: Sequence[Sink]) -> None:
        self.dashboard = dashboard
        self.sinks = sinks
        self.means = StageMeans()
        self._canvases: dict[View, np.ndarray] = {}

    def canvas(self, sink, frame: Frame, result: FrameResult, fps: float, cache: dict):
        """The drawn canvas for ``sink``'s view (the raw frame for sinks that do not draw)."""
        if self.dashboard is None or not sink.draws:
            return frame.image_bgr
        view = sink.view or View()
        if view not in cache:
            cache[view] = self._canvases[view] = self.dashboard.draw(
                frame.image_bgr, result, view, fps, self.means.means(),
                out=self._canvases.get(view),
            )  # fmt: skip
        return cache[view]

    def emit(self, frame: Frame, result: FrameResult, fps: float) -> float:
        """Write the frame to every sink; returns the milliseconds spent drawing."""
        cache: dict[View, np.ndarray] = {}
        timer = StageTimer(draw=0.0)
        for sink in self.sinks:
            with timer.stage("draw"):
                image = self.canvas(sink, frame, result, fps, cache)
            sink.write(image, result)
        draw_ms = timer.ms["draw"]
        self.means.add({**result.timings_ms, "draw": draw_ms})
        return draw_ms

    def hold_last(self, frame: Frame, result: FrameResult, fps: float, stop) -> None:
        """After a still image: show its frame again to every sink that ``holds`` (a
        window, whose keys still work) until each asks to stop or ``stop()`` gives a reason."""

        def holding() -> list[Sink]:
            if stop is not None and stop():
                return []
            return [s for s in self.sinks if s.holds and not s.stop_requested]

        self._redraw_while(frame, result, fps, holding)

    def hold(self, frame: Frame, result: FrameResult, fps: float) -> float:
        """While a sink is paused, show it the same frame again (its view may change);
        returns the seconds spent paused."""
        t0 = time.perf_counter()
        self._redraw_while(frame, result, fps, lambda: [s for s in self.sinks if s.paused])
        return time.perf_counter() - t0

    def _redraw_while(self, frame: Frame, result: FrameResult, fps: float, waiting) -> None:
        """Write the same frame again to the sinks ``waiting()`` names until it names none."""
        while sinks := waiting():
            for sink in sinks:
                sink.write(self.canvas(sink, frame, result, fps, {}), result)


def run_loop(
    source: FrameSource,
    pipeline: Pipeline,
    sinks: Sequence[Sink] = (),
    dashboard: Dashboard | None = None,
    max_frames: int | None = None,
    on_fps: Callable[[float], None] | None = None,
    fps_every: int = 10,
    stop: Callable[[], str | None] | None = None,
    hold_last: bool = False,
) -> RunSummary:
    """Process frames until the source ends, a sink asks to stop, or ``max_frames``.

    Args:
        source: frames in order; its ``error``, if set after the loop, marks a stream
            that dropped.
        pipeline: the per-frame work.
        sinks: receive every frame; those with ``draws = True`` get the canvas drawn
            for their ``view``; one with ``paused`` set is shown the same frame
            until it clears it (the time paused does not count in the FPS).
        dashboard: draws the live view for the drawing sinks.
        max_frames: stop after this many frames (None: no limit).
        on_fps: called with the rolling FPS every ``fps_every`` frames.
        fps_every: how often ``on_fps`` is called.
        stop: asked after every frame; a reason (e.g. ``"sigterm"``) ends the run there.
        hold_last: when the source ends by itself, keep showing the last frame to the sinks
            that ``hold`` (a window: a still image stays, its keys working, until ``q``,
            ``Esc`` or the window is closed).

    A sink that cannot write (disk full) ends the run with ``stopped="error"``. The sinks
    stay open (a caller may run again into them); :func:`close_sinks` finishes them.

    Returns:
        The run's summary. Ctrl-C ends the loop and still returns it.
    """
    summary = RunSummary(stage_ms=dict.fromkeys(STAGES, 0.0))
    meter = FpsMeter()
    drawing = _Drawing(dashboard, sinks)
    start, paused_s = time.perf_counter(), 0.0
    last = None
    try:
        for frame in source:
            result = pipeline.process(frame)
            last = (frame, result)
            summary.count(result)
            summary.stage_ms["draw"] += drawing.emit(frame, result, meter.fps)
            meter.tick()
            if on_fps is not None and summary.frames % fps_every == 0:
                on_fps(meter.fps)
            paused = drawing.hold(frame, result, meter.fps)
            if paused:
                paused_s += paused
                meter.shift(paused)
            reason = _stop_reason(sinks, summary.frames, max_frames, stop)
            if reason:
                summary.stopped = reason
                break
    except KeyboardInterrupt:
        summary.stopped = "interrupt"
    except SinkError as exc:
        summary.stopped, summary.error = "error", str(exc)
    summary.elapsed_s = time.perf_counter() - start - paused_s
    if source.error and summary.stopped == "end":
        summary.stopped, summary.error = "error", f"the stream dropped: {source.error}"
    if summary.stopped == "end" and not getattr(source, "is_live", True):
        read = getattr(source, "frames_read", summary.frames)
        summary.warning = cut_short(read, getattr(source, "frame_count", 0)) or getattr(
            source, "warning", None
        )
    if hold_last and summary.stopped == "end" and last is not None:
        try:
            drawing.hold_last(*last, meter.fps, stop)
        except KeyboardInterrupt:
            summary.stopped = "interrupt"
    return summary


def _stop_reason(sinks, frames: int, max_frames: int | None, stop) -> str | None:
    if any(s.stop_requested for s in sinks):
        return "quit"
    if max_frames is not None and frames >= max_frames:
        return "max_frames"
    return stop() if stop is not None else None


def close_sinks(sinks: Sequence[Sink], summary: RunSummary) -> RunSummary:
    """Close every sink (safe twice); one that reports an ``error`` on closing (a video
    that cannot be read back whole), or raises :class:`SinkError` from ``close`` (a
    ``--stream`` outlet that failed on the last frames), turns the summary into an error."""
    for sink in sinks:
        try:
            sink.close()
        except SinkError as exc:
            if not summary.error:
                summary.stopped, summary.error = "error", str(exc)
            continue
        if sink.error and not summary.error:
            summary.stopped, summary.error = "error", sink.error
    return summary
