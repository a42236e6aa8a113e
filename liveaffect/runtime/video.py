"""Frame sources: a webcam, a video file or a network stream, read on their own thread.

``open_source(spec)`` takes what the user typed: nothing or ``None`` for webcam 0, an int or a
digit string for that camera, an ``rtsp://``, ``http://`` or ``https://`` URL (also ``rtmp``,
``udp``, ``tcp``, ``srt``) for a stream, anything else for a video file. The returned
:class:`VideoSource` is a context manager and an iterator of :class:`~liveaffect.types.Frame`.

Live sources (cameras, streams) keep only the newest frame: a slow consumer gets the latest
picture, never a backlog, and ``frames_dropped`` counts what it missed. Files go through a
small bounded queue instead: every frame is delivered, in order, and the reader waits for the
consumer (back-pressure). OpenCV converts grey or 4-channel video to 3-channel BGR by default
(``CAP_PROP_CONVERT_RGB``); frames are passed on as OpenCV returns them.

A frame's ``timestamp_ms`` is, for a file, its position in the video (the container's
timestamp, ``CAP_PROP_POS_MSEC``; else index / fps), so it does not depend on how fast the
file is processed; for a camera or stream, the time it was captured, as Unix time in
milliseconds (``time.time()``), to line it up with other recordings. ``read_at_ms`` is
when the reader thread got the frame on the monotonic clock, for latency measurements.

Example:
    >>> with open_source("clip.mp4") as source:
    ...     for frame in source:
    ...         detector.detect(frame.image_bgr)
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from liveaffect.preprocess import IMAGE_SUFFIXES
from liveaffect.types import Frame

MAX_CAMERA_INDEX = 2**31 - 1  # cv2.VideoCapture takes a C int; a larger one is a traceback
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt")
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


class SourceError(RuntimeError):
    """A frame source cannot be opened or read; the message is one sentence for the user."""


class VideoSource:
    """Iterates frames read by a background thread from an OpenCV-like capture.

    Args:
        capture: object with ``read() -> (ok, image)``, ``release()`` and ``get(prop)``
            (a ``cv2.VideoCapture``, or a stand-in in tests).
        is_live: True for cameras and streams (newest frame wins), False for files (no drops).
        path_or_url: what was opened, for messages.
        queue_size: frames buffered ahead for files (back-pressure beyond that).
        read_timeout_s: live only: iteration ends with ``error`` set when no new frame
            arrives for this long; None waits forever.
        first_image: a frame already read (``open_source`` reads one to validate the source).
        first_timestamp_s: ``time.monotonic()`` when ``first_image`` was captured.

    Attributes:
        is_live, path_or_url: as given.
        is_still: a file whose name says it is a still image (one frame; the live app keeps
            it on screen until ``q``, ``Esc`` or the window is closed).
        fps: frames per second from the container or device; 0.0 when unknown.
        frame_size: (width, height) in pixels (from the device, else from the first frame).
        frame_count: number of frames a file claims to hold; 0 when unknown or live.
        frames_read: frames read from the capture so far.
        frames_dropped: live only: frames overwritten before the consumer took them.
        error: None, or why a live source stopped delivering (a sentence to print).
        warning: None, or what looks wrong with a file that could still be read (a
            still image cut short: :attr:`StillCapture.warning`).
    """

    def __init__(
        self,
        capture: Any,
        *,
        is_live: bool,
        path_or_url: str,
        queue_size: int = 4,
        read_timeout_s: float | None = 10.0,
        first_image: np.ndarray | None = None,
        first_timestamp_s: float | None = None,
    ) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1; got {queue_size}")
        if read_timeout_s is not None and read_timeout_s <= 0:
            raise ValueError(f"read_timeout_s must be > 0 or None; got {read_timeout_s}")
        self.is_live = bool(is_live)
        self.path_or_url = str(path_or_url)
        self.is_still = not self.is_live and self.path_or_url.lower().endswith(IMAGE_SUFFIXES)
        self.fps = _prop(capture, cv2.CAP_PROP_FPS)
        self.frame_size = (
            int(_prop(capture, cv2.CAP_PROP_FRAME_WIDTH)),
            int(_prop(capture, cv2.CAP_PROP_FRAME_HEIGHT)),
        )
        if first_image is not None:
            self.frame_size = (int(first_image.shape[1]), int(first_image.shape[0]))
        self.frame_count = 0 if self.is_live else int(_prop(capture, cv2.CAP_PROP_FRAME_COUNT))
        self.frames_read = 0
        self.frames_dropped = 0
        self.error: str | None = None
        self.warning: str | None = getattr(capture, "warning", None)
        self._capture = capture
        self._capacity = 1 if self.is_live else int(queue_size)
        self._read_timeout_s = read_timeout_s if self.is_live else None
        self._buffer: collections.deque[Frame] = collections.deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._done = False
        self._closed = False
        self._exhausted = False
        first = None
        if first_image is not None:
            stamp = time.monotonic() if first_timestamp_s is None else first_timestamp_s
            first = (first_image, stamp)
        self._thread = threading.Thread(
            target=self._run, args=(first,), name=f"VideoSource({path_or_url})", daemon=True
        )
        self._thread.start()

    # -- reader thread -------------------------------------------------------------------
    def _run(self, first: tuple[np.ndarray, float] | None) -> None:
        try:
            if first is not None:
                self._deliver(first[0], first[1], 0.0)
            while not self._stop.is_set():
                start = time.monotonic()
                ok, image = self._capture.read()
                end = time.monotonic()
                if not ok or image is None:
                    if self.is_live and not self._stop.is_set():
                        self.error = f"{self._name()} stopped delivering frames"
                    break
                self._deliver(image, end, (end - start) * 1000.0, time.time())
        except Exception as exc:  # a backend failure ends the source, the loop prints why
            self.error = f"reading {self._name()} failed: {exc}"
        finally:
            with contextlib.suppress(Exception):
                self._capture.release()
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def _deliver(
        self, image: np.ndarray, captured_s: float, capture_ms: float, wall_s: float | None = None
    ) -> None:
        index = self.frames_read
        if self.is_live:  # when it was captured (Unix time)
            stamp = (time.time() if wall_s is None else wall_s) * 1000.0
        else:  # where it is in the video
            stamp = self._position_ms(index)
        frame = Frame(index, stamp, image, capture_ms, captured_s * 1000.0)
        if 0 in self.frame_size and getattr(image, "ndim", 0) >= 2:
            self.frame_size = (int(image.shape[1]), int(image.shape[0]))
        with self._cond:
            self.frames_read += 1
            if self.is_live:
                if self._buffer:
                    self._buffer.clear()
                    self.frames_dropped += 1
            else:
                while len(self._buffer) >= self._capacity and not self._stop.is_set():
                    self._cond.wait(0.1)
                if self._stop.is_set():
                    return
            self._buffer.append(frame)
            self._cond.notify_all()

    def _position_ms(self, index: int) -> float:
        """A file frame's position in the video: the container's timestamp of the frame just
        read (``CAP_PROP_POS_MSEC``), else its index over the frame rate."""
        position = _prop(self._capture, cv2.CAP_PROP_POS_MSEC)
        if position > 0 or index == 0:
            return position
        return index * 1000.0 / self.fps if self.fps > 0 else 0.0

    def _name(self) -> str:
        return f"camera {self.path_or_url}" if self.path_or_url.isdigit() else self.path_or_url

    # -- consumer side -------------------------------------------------------------------
    def __iter__(self) -> VideoSource:
        return self

    def __next__(self) -> Frame:
        timeout = self._read_timeout_s
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._buffer or self._exhausted:
                if self._done or self._closed or self._exhausted:
                    self._exhausted = True
                    raise StopIteration
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    self.error = f"no frame from {self._name()} for {timeout:g} s"
                    self._stop.set()
                    self._exhausted = True
                    raise StopIteration
                self._cond.wait(remaining)
            frame = self._buffer.popleft()
            self._cond.notify_all()
            return frame

    def read(self) -> Frame | None:
        """The next frame, or None when the source has ended."""
        return next(self, None)

    @property
    def is_running(self) -> bool:
        """True while the reader thread is alive."""
        return self._thread.is_alive()

    def close(self, join_timeout_s: float = 2.0) -> None:
        """Stop the reader thread and release the capture; safe to call twice."""
        with self._cond:
            already = self._closed
            self._closed = True
            self._stop.set()
            self._buffer.clear()
            self._cond.notify_all()
        if not already and self._thread is not threading.current_thread():
            # A backend stuck in read() cannot be interrupted; the daemon thread releases
            # the capture itself when that read returns.
            self._thread.join(join_timeout_s)

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close(join_timeout_s=0.0)


def cut_short(frames: int, announced: int) -> str | None:
    """Why a file that gave ``frames`` frames of the ``announced`` it declares (0: unknown)
    looks truncated or corrupt, or None when it gave them all. Containers often
    declare a frame count estimated from the duration, so 2% and 2 frames are tolerated."""
    if announced and frames < 0.98 * announced - 2:
        return (
            f"decoding stopped after frame {frames} of the {announced} the file announces "
            "(truncated or corrupt)"
        )
    return None


def _prop(capture: Any, prop: int) -> float:
    try:
        value = float(capture.get(prop))
    except Exception:
        return 0.0
    return value if np.isfinite(value) and value > 0 else 0.0


@contextlib.contextmanager
def _quiet_opencv():
    """Silence OpenCV's own log lines while probing backends; our error says what failed."""
    log = getattr(getattr(cv2, "utils", None), "logging", None)
    if log is None:
        yield
        return
    previous = log.getLogLevel()
    log.setLogLevel(log.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        log.setLogLevel(previous)


def parse_source_spec(spec: str | int | os.PathLike | None) -> tuple[str, str | int]:
    """Classify a source spec as ("camera", index), ("stream", url) or ("file", path)."""
    if spec is None:
        return "camera", 0
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        return "camera", _camera_index(int(spec))
    text = os.fspath(spec).strip()
    if text.isdigit():
        return "camera", _camera_index(int(text))
    match = _URL.match(text)
    if match:
        scheme = match.group(1).lower()
        if scheme in STREAM_SCHEMES:
            return "stream", text
        if scheme == "file":
            return "file", text[len("file://") :]
        raise SourceError(
            f"unsupported URL scheme {scheme!r} in {text}; use one of: {', '.join(STREAM_SCHEMES)}"
        )
    return "file", str(Path(text).expanduser())


def _camera_index(index: int) -> int:
    """``index`` if OpenCV can take it (a C int of 0 or more), else :class:`SourceError`."""
    if index < 0:
        raise SourceError(f"camera index must be 0 or more; got {index}")
    if index > MAX_CAMERA_INDEX:
        raise SourceError(f"camera index must be at most {MAX_CAMERA_INDEX}; got {index}")
    return index


def check_video_file(path: Path) -> None:
    """Raise :class:`SourceError` unless ``path`` is a readable file (not yet decoded)."""
    if not path.exists():
        raise SourceError(f"video file not found: {path}")
    if path.is_dir():
        raise SourceError(f"source {path} is a folder, not a video file")
    if not os.access(path, os.R_OK):
        raise SourceError(f"cannot read video file {path} (permission denied)")


JPEG_SUFFIXES = (".jpg", ".jpeg", ".jpe")


def jpeg_cut_short(path: Path) -> str | None:
    """Why a JPEG file looks truncated (no end-of-image marker near its end), else None.
    libjpeg decodes a cut file without an error, filling the missing part with grey, and
    only prints "Premature end of JPEG file"; the marker is what it missed."""
    if not str(path).lower().endswith(JPEG_SUFFIXES):
        return None
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - 4096))  # room for trailing metadata
        tail = f.read()
    if b"\xff\xd9" in tail:
        return None
    return f"{path} has no JPEG end marker (truncated?): its missing part reads as grey"


class StillCapture:
    """A still image as a one-frame capture, read by ``cv2.imread``, which turns it upright
    by its EXIF orientation (a phone's portrait photo); FFmpeg's image reader, behind
    ``cv2.VideoCapture``, ignores that tag. Reports 25 FPS, as that reader does.

    Args:
        image: the decoded BGR image, or None when it could not be decoded (not opened).
        warning: what looks wrong with the file although it decoded (see
            :func:`jpeg_cut_short`).
    """

    FPS = 25.0

    def __init__(self, image: np.ndarray | None, warning: str | None = None) -> None:
        self._image = image
        self.warning = warning
        self._props = {cv2.CAP_PROP_FPS: self.FPS, cv2.CAP_PROP_FRAME_COUNT: 1.0}
        if image is not None:
            self._props[cv2.CAP_PROP_FRAME_WIDTH] = float(image.shape[1])
            self._props[cv2.CAP_PROP_FRAME_HEIGHT] = float(image.shape[0])

    def isOpened(self) -> bool:
        return self._image is not None

    def read(self) -> tuple[bool, np.ndarray | None]:
        image, self._image = self._image, None
        return image is not None, image

    def get(self, prop: int) -> float:
        return self._props.get(prop, 0.0)

    def set(self, prop: int, value: float) -> bool:
        return False

    def release(self) -> None:
        self._image = None


def _open_file(path: Path, decode_threads: int | None) -> Any:
    """``cv2.VideoCapture`` of a file, with ``decode_threads`` FFmpeg threads when given
    (a backend that refuses the setting opens the file with its defaults)."""
    if decode_threads is not None:
        if int(decode_threads) < 1:
            raise ValueError(f"decode_threads must be >= 1; got {decode_threads}")
        params = [cv2.CAP_PROP_N_THREADS, int(decode_threads)]
        capture = cv2.VideoCapture(str(path), cv2.CAP_ANY, params)
        if capture.isOpened():
            return capture
        capture.release()
    return cv2.VideoCapture(str(path))


def open_source(
    spec: str | int | os.PathLike | None = None,
    *,
    queue_size: int = 4,
    read_timeout_s: float | None = 10.0,
    open_timeout_s: float = 10.0,
    camera_size: tuple[int, int] | None = None,
    decode_threads: int | None = None,
) -> VideoSource:
    """Open a webcam, video file or stream and start reading it.

    Args:
        spec: None or nothing for webcam 0; an int or digit string for a camera index; an
            ``rtsp://``/``http(s)://`` URL for a stream; otherwise a video file path.
        queue_size: frames a file source decodes ahead of the consumer.
        read_timeout_s: a live source silent this long ends iteration with ``error`` set.
        open_timeout_s: streams: how long FFmpeg may take to connect and to read a frame.
        camera_size: cameras: (width, height) to ask the device for; it may pick another.
        decode_threads: files: FFmpeg's decoding threads (None: OpenCV's default, one per
            core). Batch analysis decodes on one thread: its other threads keep the cores
            busy, and frame threading only adds work. The frames are the same either way.

    Returns:
        A started :class:`VideoSource`; use it in a ``with`` block.

    Raises:
        SourceError: missing or unreadable file, camera that does not open, stream that
            cannot be opened, or a source that opens but yields no frame.
    """
    kind, target = parse_source_spec(spec)
    capture, what = _open_capture(kind, target, open_timeout_s, camera_size, decode_threads)
    if not capture.isOpened():
        capture.release()
        raise SourceError(what)
    with _quiet_opencv():
        ok, first = capture.read()
    first_timestamp_s = time.monotonic()
    if not ok or first is None:
        capture.release()
        if kind == "camera":
            raise SourceError(f"camera {target} opened but delivered no frame")
        raise SourceError(what if kind == "file" else f"the stream {target} delivered no frame")
    return VideoSource(
        capture,
        is_live=kind != "file",
        path_or_url=str(target),
        queue_size=queue_size,
        read_timeout_s=read_timeout_s,
        first_image=first,
        first_timestamp_s=first_timestamp_s,
    )


def _open_capture(kind: str, target, open_timeout_s: float, camera_size, decode_threads):
    """The ``cv2.VideoCapture`` for a parsed source, and what to say if it did not open."""
    if kind == "file":
        path = Path(target)
        check_video_file(path)
        if path.name.lower().endswith(IMAGE_SUFFIXES):
            with _quiet_opencv():
                image = cv2.imread(str(path), cv2.IMREAD_COLOR)  # upright by its EXIF tag
                # a format imread lacks may still be one FFmpeg's image reader decodes
                if image is not None:
                    capture = StillCapture(image, jpeg_cut_short(path))
                else:
                    capture = _open_file(path, None)
            return capture, (
                f"cannot read {path} as an image (corrupt, or a format OpenCV cannot decode)"
            )
        with _quiet_opencv():
            capture = _open_file(path, decode_threads)
        return capture, (
            f"cannot read {path} as a video (not a video file, or a format FFmpeg cannot decode)"
        )
    if kind == "camera":
        with _quiet_opencv():
            capture = cv2.VideoCapture(int(target))
        if capture.isOpened() and camera_size is not None:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, int(camera_size[0]))
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, int(camera_size[1]))
        return capture, f"camera {target} could not be opened (no such camera, or it is in use)"
    ms = int(open_timeout_s * 1000)
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
    with _quiet_opencv():
        capture = cv2.VideoCapture(str(target), cv2.CAP_FFMPEG, params)
    what = f"cannot open the stream {target} (unreachable, wrong URL or unsupported format)"
    return capture, what
