"""One video, every frame: the live app's detector, tracker, model and smoothing, batched.

:class:`VideoAnalyzer` loads the face detector and the model engine once and then
analyses videos one after another, each with a fresh tracker and smoother (ids start at
1 in every video). Per video three things run at the same time:

* the decoder thread of :func:`liveaffect.runtime.video.open_source` (bounded queue,
  every frame in order, time stamps = the position in the video; FFmpeg decodes on that
  one thread);
* this thread: ``Pipeline.locate`` (detect, track, crop) frame after frame;
* inference threads, each with its own copy of the engine (one CPU thread each): the
  faces of up to ``batch_frames`` frames (at most ``batch_faces`` faces) go through an
  engine in one call, while this thread goes on detecting and the other engines score
  the batches before and after; the results are then smoothed in frame order
  (``Pipeline.finish``) and written by the live app's ``CsvSink``.

The work is bound by the CPU (the model's test-time views take about two thirds of it),
so the aim is that every core always has work and that none is spent on coordination:
every stage runs on one thread (the engines, the detector, FFmpeg, and OpenCV, whose own
thread pool is set to one thread while a video is analysed: its resizes of one frame
are too small to share out), and a batch goes to the engines before it is full while no
engine has anything to do (the first frames of a video, or a detector that falls behind),
so that the other core does not wait for ``batch_frames`` frames to be detected. Towards
the end of a video the batches shrink so that the engines finish together.

So the rows are the live app's rows for the same frames (same stages, same order, and the
same ``timestamp_ms``: a file frame's position in the video).
"""

from __future__ import annotations

import contextlib
import os
import queue
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from liveaffect.errors import OptionError
from liveaffect.runtime.detectors import DEFAULT_MIN_SCORE, FULL_RANGE_EVERY
from liveaffect.runtime.live import LocatedFrame, Pipeline
from liveaffect.runtime.options import DETECTOR_FLAGS, ENGINE_FLAGS
from liveaffect.runtime.sinks import CsvSink
from liveaffect.runtime.smoothing import PredictionSmoother
from liveaffect.runtime.video import cut_short

if TYPE_CHECKING:
    from liveaffect.engines import EngineOptions
    from liveaffect.runtime.detectors import DetectorOptions


class VideoError(RuntimeError):
    """A video that cannot be read, or that failed midway; the message is the reason."""


@dataclass(frozen=True)
class AnalysisSettings:
    """How videos are analysed (the options shared with ``live`` plus batching).

    Attributes:
        model: bundle folder or ``.keras`` file.
        detector: face detector name.
        detector_weights: local detector weights, or None.
        min_face_score: detections below this confidence are ignored.
        small_faces: BlazeFace also searches tiles and follows small faces (``live``'s
            default; False: ``--no-small-faces``).
        blazeface_model: which BlazeFace models run (``--blazeface-model``).
        full_range_every: ``"both"``: full range on every this many frames
            (``--full-range-every``).
        smooth: predictions averaged per face (1 = off).
        engine: inference engine name (``auto``: TFLite on a CPU, Keras with a GPU).
        threads: CPU cores to use (None: all): as many inference threads, each running
            its own engine copy on one core, beside the detecting thread.
        tta: average the card's test-time views, as ``live`` does.
        batch_frames: most frames whose faces share one engine call.
        batch_faces: most faces per engine call.
        queue_frames: frames the decoder thread keeps ready.
    """

    model: Path
    detector: str = "blazeface"
    detector_weights: Path | None = None
    min_face_score: float = DEFAULT_MIN_SCORE
    small_faces: bool = True
    blazeface_model: str = "both"
    full_range_every: int = FULL_RANGE_EVERY
    smooth: int = 3
    engine: str = "auto"
    threads: int | None = None
    tta: bool = True
    batch_frames: int = 8
    batch_faces: int = 16
    queue_frames: int = 16

    def __post_init__(self) -> None:
        for name in ("batch_frames", "batch_faces", "queue_frames"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be 1 or more, got {getattr(self, name)}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"--threads must be 1 or more, got {self.threads}")
        if self.smooth < 1:
            raise ValueError(f"--smooth must be 1 (off) or more, got {self.smooth}")
        for name, flags in (("detector_options", DETECTOR_FLAGS), ("engine_options", ENGINE_FLAGS)):
            try:
                getattr(self, name)
            except OptionError as exc:
                raise ValueError(exc.for_flags(flags)) from None

    @property
    def inference_threads(self) -> int:
        """Engine copies scoring batches side by side (one core each)."""
        return max(1, int(self.threads or os.cpu_count() or 1))

    @property
    def detector_options(self) -> DetectorOptions:
        """The face detector (one thread: it runs beside the inference threads)."""
        from liveaffect.runtime.detectors import DetectorOptions

        return DetectorOptions(
            self.detector,
            self.detector_weights,
            self.min_face_score,
            1,
            "video" if self.small_faces else "off",
            self.blazeface_model,
            self.full_range_every,
        )

    @property
    def engine_options(self) -> EngineOptions:
        """One engine copy: ``batch_faces`` faces per call, one CPU thread."""
        from liveaffect.engines import EngineOptions

        tta = None if self.tta else False
        return EngineOptions(self.engine, batch_size=self.batch_faces, tta=tta, threads=1)


@dataclass
class VideoStats:
    """What analysing one video did."""

    frames: int = 0
    face_rows: int = 0
    face_ids: set[int] = field(default_factory=set)
    fps: float = 0.0
    announced_frames: int = 0
    frame_size: tuple[int, int] = (0, 0)
    last_timestamp_ms: float = 0.0
    elapsed_s: float = 0.0

    @property
    def duration_s(self) -> float:
        """Length of the video: frames / fps, the end of the last frame. Without an fps, the
        last frame's time stamp plus one average frame interval (the stamps start at 0, so
        that is last stamp x frames / (frames - 1)); 0 for a single frame."""
        if self.fps > 0:
            return self.frames / self.fps
        if self.frames < 2:
            return 0.0
        return self.last_timestamp_ms / 1000.0 * self.frames / (self.frames - 1)

    @property
    def processing_fps(self) -> float:
        return self.frames / self.elapsed_s if self.elapsed_s > 0 else 0.0


class Progress(Protocol):
    """A progress bar (tqdm's interface): ``total`` is set to the video's frame count, then
    ``update(n)`` is called with the frames just finished."""

    total: Any

    def update(self, n: int) -> Any: ...


class VideoAnalyzer:
    """The detector and the model, loaded once, applied to one video at a time.

    Args:
        settings: what to load and how to batch.

    Raises:
        liveaffect.bundle.BundleError, liveaffect.runtime.engine.EngineError,
        liveaffect.runtime.detectors.DetectorError: the model or detector cannot be built.
    """

    def __init__(self, settings: AnalysisSettings) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        from liveaffect import engines
        from liveaffect.bundle import open_bundle
        from liveaffect.runtime.detectors import build_detector

        self.settings = settings
        self.detector = build_detector(settings.detector_options)
        engines.configure_threads(settings.inference_threads)
        self.bundle = open_bundle(settings.model)  # Keras loads only if an engine needs it
        self.card = self.bundle.card
        self.engines: queue.SimpleQueue = queue.SimpleQueue()
        for _ in range(settings.inference_threads):
            self.engine = engines.build_engine(self.bundle, settings.engine_options)
            self.engines.put(self.engine)

    @property
    def trained_heads(self) -> tuple[str, ...]:
        """Heads whose values are shown (the card marks the others untrained)."""
        return tuple(h for h in ("expr", "va", "au") if self.card.trained(h))

    @property
    def weak_aus(self) -> tuple[str, ...]:
        """The CSV's AU columns (``AU10``) the card says are found poorly on new faces."""
        return self.card.weak_au_columns()

    def new_pipeline(self) -> Pipeline:
        """A pipeline with a fresh tracker and smoother, built as the live app builds it."""
        smoother = PredictionSmoother(self.settings.smooth)
        return Pipeline(self.detector, self.engine, self.card.preprocess, smoother=smoother)

    def analyze(self, video: str, csv_path: str, progress: Progress | None = None) -> VideoStats:
        """Analyse every frame of ``video`` into the CSV file ``csv_path``.

        Raises:
            VideoError: the video cannot be opened, or decoding stopped early.
            KeyboardInterrupt: passed on after the reader, the CSV and the thread are closed.
        """
        from liveaffect.runtime.video import SourceError, open_source

        with _opencv_threads(1):
            try:
                source = open_source(
                    video,
                    queue_size=self.settings.queue_frames,
                    decode_threads=1,
                )
            except SourceError as exc:
                raise VideoError(str(exc)) from None
            return self._analyze(source, csv_path, progress)

    def _analyze(self, source, csv_path: str, progress: Progress | None) -> VideoStats:
        stats = VideoStats(fps=source.fps, announced_frames=source.frame_count)
        if progress is not None and source.frame_count:
            progress.total = source.frame_count
        start = time.perf_counter()
        with (
            source,
            CsvSink(csv_path, self.card) as sink,
            ThreadPoolExecutor(
                self.settings.inference_threads, thread_name_prefix="liveaffect-infer"
            ) as pool,
        ):
            loop = _BatchLoop(self, self.new_pipeline(), sink, pool, stats, progress)
            for frame in source:
                loop.add(frame)
            loop.drain()
            stats.frame_size = tuple(source.frame_size)
            error = source.error
        stats.elapsed_s = time.perf_counter() - start
        _check_complete(stats, error)
        return stats


@contextlib.contextmanager
def _opencv_threads(threads: int):
    """OpenCV's own thread pool set to ``threads`` inside the block (restored after)."""
    import cv2

    previous = cv2.getNumThreads()
    cv2.setNumThreads(threads)
    try:
        yield
    finally:
        cv2.setNumThreads(previous)


def _check_complete(stats: VideoStats, error: str | None) -> None:
    if error:
        raise VideoError(f"decoding failed after {stats.frames} frames: {error}")
    if stats.frames == 0:
        raise VideoError("the video holds no frame that can be decoded")
    short = cut_short(stats.frames, stats.announced_frames)
    if short:
        raise VideoError(short)


def predict_frames(engines: queue.SimpleQueue, frames: list[LocatedFrame]) -> list[list]:
    """Score the faces of several located frames in one call of a free engine from
    ``engines`` (given back afterwards); returns one list of predictions per frame."""
    batches = [f.crops for f in frames if f.faces]
    if not batches:
        return [[] for _ in frames]
    engine = engines.get()
    try:
        predictions = engine.predict(np.concatenate(batches))
    finally:
        engines.put(engine)
    out, at = [], 0
    for f in frames:
        out.append(predictions[at : at + len(f.faces)])
        at += len(f.faces)
    return out


class _BatchLoop:
    """Collects located frames into batches, keeps one batch per inference thread in
    flight while the next is being located, and finishes batches in order.

    A batch is sent when it is full, or earlier when fewer engine calls are waiting or
    running than there are cores beside this thread (at the start of a video, or when
    detection falls behind the engines): an idle core gets work at once instead of after
    ``batch_frames`` more frames. While the engines are busy, batches fill up. Towards the
    end of a file batches get smaller, and the last frames are split into one batch per
    engine.
    """

    def __init__(self, analyzer, pipeline, sink, pool, stats, progress) -> None:
        self.engines = analyzer.engines
        self.max_inflight = analyzer.settings.inference_threads
        self.max_frames = analyzer.settings.batch_frames
        self.max_faces = analyzer.settings.batch_faces
        self.pipeline, self.sink, self.pool = pipeline, sink, pool
        self.stats, self.progress = stats, progress
        self.pending: list[LocatedFrame] = []
        self.faces = 0
        self.inflight: deque[tuple[list[LocatedFrame], Future]] = deque()

    def add(self, frame) -> None:
        located = self.pipeline.locate(frame)
        self.pending.append(located)
        self.faces += len(located.faces)
        full = len(self.pending) >= self._batch_frames(located) or self.faces >= self.max_faces
        if full or (self.faces and self._engine_calls() < self.max_inflight - 1):
            self._submit(self.pending)
            self.pending, self.faces = [], 0
            while len(self.inflight) > self.max_inflight or (
                self.inflight and self.inflight[0][1].done()
            ):
                self._finish_oldest()

    def drain(self) -> None:
        n = len(self.pending)
        parts = min(n, self.max_inflight)
        for k in range(parts):  # in order, sizes differing by one frame at most
            self._submit(self.pending[k * n // parts : (k + 1) * n // parts])
        self.pending, self.faces = [], 0
        while self.inflight:
            self._finish_oldest()

    def _batch_frames(self, located: LocatedFrame) -> int:
        """Frames in a full batch: ``batch_frames``, fewer over the last frames of a file
        that announces its length (at most each engine's share of what is left, rounded
        down to a power of two, the sizes the engine runs without padding), so that the
        engines run out of work together rather than one after the other."""
        left = self.stats.announced_frames - located.frame.index - 1 + len(self.pending)
        share = -(-left // self.max_inflight)
        if left <= 0 or share >= self.max_frames:  # length unknown, longer, or far from the end
            return self.max_frames
        return 1 << (share.bit_length() - 1)

    def _engine_calls(self) -> int:
        """Batches sent and not yet scored (running or waiting for an engine)."""
        return sum(not future.done() for _, future in self.inflight)

    def _submit(self, batch: list[LocatedFrame]) -> None:
        self.inflight.append((batch, self.pool.submit(predict_frames, self.engines, batch)))

    def _finish_oldest(self) -> None:
        batch, future = self.inflight.popleft()
        stats = self.stats
        for located, predictions in zip(batch, future.result(), strict=True):
            result = self.pipeline.finish(located, predictions)
            self.sink.write(located.frame.image_bgr, result)
            stats.frames += 1
            stats.face_rows += len(result.faces)
            stats.face_ids.update(f.track_id for f in result.faces)
            stats.last_timestamp_ms = result.timestamp_ms
        if self.progress is not None:
            self.progress.update(len(batch))
