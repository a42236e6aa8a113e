"""Measuring the live pipeline on a replayed video: per-stage times, FPS, latency, memory.

The library half of ``python -m liveaffect bench`` (the command is
:mod:`liveaffect.commands.bench`): replay a clip once, in a loop, or as a live camera,
run every frame through a :class:`~liveaffect.runtime.live.Pipeline` and a drawing
step, and summarise what was measured. Stages are timed with the loop's own
:class:`~liveaffect.runtime.timing.StageTimer`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from liveaffect.files import write_whole
from liveaffect.runtime.timing import STAGES, StageTimer
from liveaffect.runtime.video import SourceError, VideoSource, open_source


class LoopingCapture:
    """cv2.VideoCapture-like reader that rewinds at the end (for long memory runs)."""

    def __init__(self, path: str, total: int, realtime_fps: float = 0.0) -> None:
        import cv2

        self._cv2 = cv2
        self._cap = cv2.VideoCapture(path)
        self._left = total
        self._period = 1.0 / realtime_fps if realtime_fps > 0 else 0.0
        self._next = time.monotonic()

    def read(self):
        if self._left <= 0:
            return False, None
        if self._period:
            delay = self._next - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._next = max(self._next + self._period, time.monotonic() - self._period)
        ok, img = self._cap.read()
        if not ok:
            self._cap.set(self._cv2.CAP_PROP_POS_FRAMES, 0)
            ok, img = self._cap.read()
        if ok:
            self._left -= 1
        return ok, img

    def get(self, prop):
        return self._cap.get(prop)

    def isOpened(self):
        return self._cap.isOpened()

    def release(self):
        self._cap.release()


def open_replay(path: str, frames: int, loop: bool, camera: bool):
    """Open ``path`` for replay; returns ``(source, frames to time, fps)``.

    Args:
        path: the video file.
        frames: frames to replay (0: the whole clip once).
        loop: rewind at the end until ``frames`` are done.
        camera: replay at the clip's fps as a live camera (newest frame wins).

    Raises:
        SourceError: the video cannot be opened.
    """
    probe = open_source(path)
    fps = probe.fps or 25.0
    count = int(probe.frame_count or 0)
    probe.close()
    total = frames if (frames and (loop or camera)) else (min(frames, count) if frames else count)
    if not loop and not camera:
        return open_source(path), total, fps
    cap = LoopingCapture(path, total, fps if camera else 0.0)
    if not cap.isOpened():
        raise SourceError(f"cannot open {path}")
    return VideoSource(cap, is_live=camera, path_or_url=path), total, fps


def stats(values) -> dict[str, float]:
    """Median and 95th percentile in milliseconds (None when there are no values)."""
    if len(values) == 0:
        return {"median_ms": None, "p95_ms": None}
    a = np.asarray(values)
    return {
        "median_ms": round(float(np.median(a)), 3),
        "p95_ms": round(float(np.percentile(a, 95)), 3),
    }


def rss_mb() -> float:
    """Resident memory in MiB (the unit of ``ru_maxrss`` / 1024 too)."""
    import psutil

    return psutil.Process().memory_info().rss / 2**20


class Series:
    """A preallocated float array, so that recording 10,000 frames of timings does not
    itself show up as memory growth (a Python list of floats grows ~300 B a frame)."""

    def __init__(self, capacity: int) -> None:
        self._data = np.zeros(max(int(capacity), 16), np.float64)
        self._n = 0

    def append(self, value: float) -> None:
        if self._n == len(self._data):  # unknown length: grow (rare)
            self._data = np.concatenate([self._data, np.zeros_like(self._data)])
        self._data[self._n] = value
        self._n += 1

    def __len__(self) -> int:
        return self._n

    def values(self) -> np.ndarray:
        return self._data[: self._n]


@dataclass(frozen=True)
class ReplaySettings:
    """How to replay: see :func:`open_replay` and the ``bench`` options of the same names."""

    path: str
    frames: int = 0
    loop: bool = False
    camera_sim: bool = False
    warmup: int = 10
    memory_every: int = 100


class _Recorder:
    """Everything measured per frame, preallocated."""

    def __init__(self, settings: ReplaySettings, total: int) -> None:
        cap = (total or 10_000) + 16
        self.settings = settings
        self.per_stage = {s: Series(cap) for s in STAGES}
        self.faces, self.lag, self.latency = Series(cap), Series(cap), Series(cap)
        self.rss: list[tuple[int, float]] = []
        self.n = 0
        self.t_start: float | None = None
        self.faces_start = 0.0

    def add(self, frame, result, ms: dict[str, float], source) -> None:
        now_ms = time.monotonic() * 1000.0
        self.n += 1
        if self.n == self.settings.warmup:
            self.t_start = time.perf_counter()
            self.faces_start = float(self.faces.values().sum())
        if self.n > self.settings.warmup:
            for s in STAGES:
                self.per_stage[s].append(float(ms.get(s, 0.0)))
            self.latency.append(now_ms - frame.read_at_ms)
            if self.settings.camera_sim:
                self.lag.append(source.frames_read - 1 - frame.index)
        self.faces.append(len(result.faces))
        if self.n % self.settings.memory_every == 0:
            self.rss.append((self.n, rss_mb()))

    def summary(self, source, fps: float) -> dict[str, Any]:
        elapsed = time.perf_counter() - self.t_start if self.t_start else float("nan")
        timed = max(self.n - self.settings.warmup, 0)
        fpf = self.faces.values()
        faces_timed = float(fpf.sum()) - self.faces_start if self.t_start else 0
        medians = [
            np.median(v.values()) for s, v in self.per_stage.items() if s != "read" and len(v)
        ]
        out: dict[str, Any] = {
            "frames": self.n,
            "frames_timed": timed,
            "frames_with_faces": int((fpf > 0).sum()),
            "faces_per_frame_mean": round(float(fpf.mean()), 2) if len(fpf) else 0,
            "faces_per_frame_max": int(fpf.max()) if len(fpf) else 0,
            "fps": round(timed / elapsed, 2) if timed else None,
            "faces_per_s": round(faces_timed / elapsed, 1) if timed else None,
            "stages": {s: stats(v.values()) for s, v in self.per_stage.items()},
            "compute_ms_per_frame": round(float(sum(medians)), 3),
            "capture_to_display_ms": stats(self.latency.values()),
            "frames_dropped": int(getattr(source, "frames_dropped", 0)),
            "source_fps": fps,
        }
        if self.settings.camera_sim:
            lag = self.lag.values()
            out["frames_behind_newest"] = {
                "max": int(lag.max()) if len(lag) else 0,
                "mean": round(float(lag.mean()), 3) if len(lag) else None,
            }
        if self.rss:
            out["memory"] = memory_summary(self.rss)
        return out


def memory_summary(rss: list[tuple[int, float]]) -> dict[str, Any]:
    """RSS samples ``(frame, MiB)``: first and last tenth, growth, and slope per 1000 frames."""
    vals = np.array([r for _, r in rss])
    k = max(len(vals) // 10, 1)
    slope = float(np.polyfit([i for i, _ in rss], vals, 1)[0] * 1000) if len(vals) > 2 else None
    return {
        "samples": [(int(i), round(r, 1)) for i, r in rss],
        "unit": "MiB",
        "rss_first_mb": round(float(np.median(vals[:k])), 1),
        "rss_last_mb": round(float(np.median(vals[-k:])), 1),
        "growth_mb": round(float(np.median(vals[-k:]) - np.median(vals[:k])), 1),
        "slope_mb_per_1000_frames": round(slope, 3) if slope is not None else None,
    }


def replay_pipeline(
    settings: ReplaySettings, pipeline, draw: Callable[[Any, Any], Any], label: str = ""
) -> dict[str, Any]:
    """Replay the clip through ``pipeline`` and ``draw(frame, result)``; returns the summary."""
    from tqdm import tqdm

    source, total, fps = open_replay(
        settings.path, settings.frames, settings.loop, settings.camera_sim
    )
    record = _Recorder(settings, total)
    bar = tqdm(total=total, desc=f"bench {label}", unit="frame")
    with source:
        it = iter(source)
        while True:
            loop = StageTimer()
            with loop.stage("read"):
                frame = next(it, None)
            if frame is None:
                break
            result = pipeline.process(frame)
            with loop.stage("draw"):
                draw(frame, result)
            record.add(frame, result, {**result.timings_ms, **loop.ms}, source)
            bar.update(1)
            if total and record.n >= total:
                break
    bar.close()
    return record.summary(source, fps)


def baseline_predict_per_face(
    settings: ReplaySettings, bundle, detector, frames: int
) -> dict[str, Any]:
    """The original design: per frame, per face, ``model.predict`` on the Keras model."""
    from liveaffect.preprocess import crop_face, prepare_face

    spec = bundle.card.preprocess
    model = bundle.model
    source, _, _ = open_replay(settings.path, frames + settings.warmup, True, False)
    times, faces = [], 0
    with source:
        for i, frame in enumerate(source):
            t0 = time.perf_counter()
            dets = detector.detect(frame.image_bgr)
            for d in dets:
                crop = crop_face(frame.image_bgr, d.xyxy, spec.crop_margin, spec.square)
                model.predict(prepare_face(crop, spec)[None], verbose=0)
            if i >= settings.warmup:
                times.append(time.perf_counter() - t0)
                faces += len(dets)
    total = sum(times)
    return {
        "frames_timed": len(times),
        "fps": round(len(times) / total, 2) if total else None,
        "ms_per_face": round(1000 * total / faces, 1) if faces else None,
    }


def face_crops(path: str, bundle, detector, limit: int = 64) -> np.ndarray:
    """Up to ``limit`` prepared face crops from the clip (at most 4 per frame)."""
    from liveaffect.preprocess import prepare_batch

    source, _, _ = open_replay(path, 0, False, False)
    crops = []
    with source:
        for frame in source:
            dets = detector.detect(frame.image_bgr)
            if dets:
                boxes = [d.xyxy for d in dets[:4]]
                crops.append(prepare_batch(frame.image_bgr, boxes, bundle.card.preprocess))
            if sum(len(c) for c in crops) >= limit:
                break
    shape = (0, *bundle.card.preprocess.input_shape)
    return np.concatenate(crops)[:limit] if crops else np.zeros(shape, np.float32)


def compare_engines(bundle, crops: np.ndarray, names: list[str]) -> dict[str, Any]:
    """Largest |engine - Keras float| per trained head, one view per face, on ``crops``.

    An engine that cannot be built (no TFLite cache can be written, say) gets
    ``{"error": why}`` instead, so that the rest of the report is kept.
    """
    from liveaffect.engines import ENGINES, EngineError, create_engine

    if not len(crops):
        return {"note": "no faces found to compare on"}
    x = crops
    ref = create_engine(bundle, "keras", batch_size=len(x), tta=False).predict_heads(x)
    out: dict[str, Any] = {"faces": len(x)}
    for name in names:
        if name not in ENGINES:
            raise ValueError(
                f"unknown engine {name!r} to compare; choose from: {', '.join(ENGINES)}"
            )
        if name == "keras":
            continue
        try:
            engine = create_engine(bundle, name, batch_size=len(x), tta=False)
        except EngineError as exc:
            out[name] = {"error": str(exc)}
            continue
        got = engine.predict_heads(x)
        entry = {head: float(np.abs(ref[head] - got[head]).max()) for head in ref}
        if "expr" in ref:
            entry["expr_top1_agreement"] = float(
                np.mean(ref["expr"].argmax(1) == got["expr"].argmax(1))
            )
        out[name] = entry
    return out


def save_report(report: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``report`` as JSON to ``path``, whole or not at all (missing folders are made).

    The text goes to a temporary file beside ``path`` that replaces it only once complete:
    a full disk leaves neither a cut-off JSON nor an emptied older one.

    Raises:
        OSError: the file cannot be written, with ``path`` as its ``filename``.
    """
    return write_whole(path, (json.dumps(report, indent=2) + "\n").encode("utf-8"))
