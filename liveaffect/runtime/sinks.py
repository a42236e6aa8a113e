"""Where processed frames go: an OpenCV window, an annotated video, a CSV of faces.

Every sink implements :class:`liveaffect.types.Sink` and is a context manager whose
``close()`` is safe to call twice, so the end of a video, ``q``, Ctrl-C or an
exception always releases the window and flushes files. A sink whose ``draws``
attribute is True receives the drawn canvas for its ``view``
(:class:`~liveaffect.runtime.dashboard.View`), the others the raw frame.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from liveaffect.bundle import ModelCard
from liveaffect.runtime.controls import Controls
from liveaffect.runtime.dashboard import DEFAULT_VIEW, View
from liveaffect.runtime.display import fit_window, screen_size
from liveaffect.runtime.hud import draw_notes
from liveaffect.runtime.style import BACKGROUND, Style
from liveaffect.types import FrameResult, Sink

PAUSED_POLL_MS = 30
"""How often a paused window looks at the keyboard."""


def au_column(name: str) -> str:
    """The CSV column of an action unit: zero-padded, ``AU1`` -> ``AU01``."""
    return f"AU{int(name[2:]):02d}"


def csv_columns(card: ModelCard) -> tuple[str, ...]:
    """Header of the per-face CSV, in order, with the card's class and AU names."""
    aus = [au_column(a) for a in card.aus]
    return (
        "frame",
        "timestamp_ms",
        "face_id",
        "x1",
        "y1",
        "x2",
        "y2",
        "det_score",
        *(f"p_{name}" for name in card.expressions),
        "expression",
        "valence",
        "arousal",
        *aus,
        *(f"{au}_active" for au in aus),
    )


CSV_COLUMNS: tuple[str, ...] = csv_columns(ModelCard())
"""The header for a card with the standard label spaces (``liveaffect.labels``)."""


class SinkError(Exception):
    """A sink cannot be opened or written (unwritable path, no codec, disk full ...).

    Attributes:
        exit_status: 2 for a bad output path or codec (bad input), 1 for a write that
            failed (disk full): the run stopped and what was written before is kept.
    """

    def __init__(self, message: str, exit_status: int = 2) -> None:
        super().__init__(message)
        self.exit_status = exit_status


DISK_FULL_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EFBIG, *(getattr(errno, n) for n in ("EDQUOT",) if hasattr(errno, n))}
)
MIN_FREE_BYTES = 1 << 20
"""A video stops being written when its disk has less than this left (1 MiB)."""


def write_failed(path: Path, exc: OSError, kept: str) -> SinkError:
    """The one-line error for a failed write; ``kept`` says what the file still holds."""
    what = "disk full" if exc.errno in DISK_FULL_ERRNOS else "write failed"
    return SinkError(f"{what}: cannot write {path} ({exc.strerror}); {kept}", exit_status=1)


class _Closing(Sink):
    """Context-manager plumbing shared by the sinks (``draws``, ``stop_requested``: False)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


def _point_qt_at_system_fonts() -> None:
    """OpenCV's bundled Qt ships no fonts and warns; use the system's when there are some."""
    for folder in ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/truetype"):
        if os.path.isdir(folder):
            os.environ.setdefault("QT_QPA_FONTDIR", folder)
            return


def letterbox(
    image: np.ndarray, area: tuple[int, int], out: np.ndarray | None = None
) -> np.ndarray:
    """``image`` centred in an ``area`` (width, height) on the panel colour, shrunk first
    (aspect kept) when it is larger: what a window of that size can show pixel for pixel,
    where Qt would stretch an image of another shape to fill it.

    Args:
        image: BGR image.
        area: (width, height) to fill.
        out: an earlier result to reuse when it has the area's size.

    Returns:
        ``image`` itself when it already has the area's size, else the filled area.
    """
    (aw, ah), (w, h) = area, (image.shape[1], image.shape[0])
    if (w, h) == (aw, ah):
        return image
    scale = min(1.0, aw / w, ah / h)
    if scale < 1.0:
        w, h = max(1, round(w * scale)), max(1, round(h * scale))
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    if out is None or out.shape != (ah, aw, 3):
        out = np.empty((ah, aw, 3), np.uint8)
    out[:] = BACKGROUND
    top, left = (ah - h) // 2, (aw - w) // 2
    out[top : top + h, left : left + w] = image
    return out


class WindowSink(_Closing):
    """Shows the drawn canvas in an OpenCV window and acts on its keys.

    The keys (:data:`liveaffect.runtime.hud.KEYS`) go to ``controls``: ``q``/Esc or
    closing the window sets ``stop_requested``; ``space`` sets ``paused`` (the live
    loop then shows the same frame until it is cleared); ``s`` saves the canvas as a
    PNG; ``p``, ``t``, ``h``/``?`` change ``view``. Passing notes (the key summary in
    the first seconds, PAUSED, the snapshot's path) are drawn on a copy, so the
    snapshots do not carry them.

    The window is resizable and opens at the first canvas's size shrunk to fit the
    screen, or at ``size``. From then on its ``view`` asks for canvases drawn to fit the
    window's picture area (``View.fit``), so text, bars and lines are drawn for the pixels
    on screen instead of drawn large and shrunk; a resized window gets canvases of its
    new size from the next frame on. The window never resizes itself: a canvas of
    another shape (the panel shown or hidden) is centred in it on the panel colour, and
    one that does not fit even at its smallest is shrunk, never stretched.

    Args:
        name: the window title.
        controls: the keys' state (default: snapshots go to the current folder).
        size: (width, height) at start; None fits the first canvas to the screen.
        pace_fps: show at most this many frames a second (a video file's own rate);
            None shows each frame as soon as it is ready.
    """

    draws = True

    def __init__(
        self,
        name: str = "liveaffect",
        controls: Controls | None = None,
        size: tuple[int, int] | None = None,
        pace_fps: float | None = None,
    ) -> None:
        self.name = name
        self.controls = controls if controls is not None else Controls()
        self.size = size
        self.pace_s = 1.0 / pace_fps if pace_fps and pace_fps > 0 else 0.0
        self._next_show: float | None = None
        self._area: tuple[int, int] | None = None
        self._letterbox: np.ndarray | None = None
        self._opened = False
        self._closed = False

    def open(self, canvas_size: tuple[int, int] | None = None) -> None:
        """Create the (resizable) window now: before any output file is opened."""
        if self._opened:
            return
        _point_qt_at_system_fonts()
        flags = cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL
        cv2.namedWindow(self.name, flags)
        self._opened = True
        if self.size is None and canvas_size is not None and min(canvas_size) > 0:
            self.size = fit_window(canvas_size, screen_size())
        if self.size is not None:
            cv2.resizeWindow(self.name, *self.size)

    def _picture_area(self) -> tuple[int, int] | None:
        """(width, height) of the window's picture area, None while unknown."""
        try:
            _, _, width, height = cv2.getWindowImageRect(self.name)
        except cv2.error:
            return None
        return (int(width), int(height)) if width > 0 and height > 0 else None

    def _delay_ms(self) -> int:
        """How long to wait for the file's frame rate (1 ms when not pacing or late)."""
        if not self.pace_s:
            return 1
        now = time.perf_counter()
        if self._next_show is None:
            self._next_show = now
        self._next_show += self.pace_s
        if self._next_show < now:  # processing is slower than the file: do not wait
            self._next_show = now
            return 1
        return max(1, round((self._next_show - now) * 1000))

    def hold(self) -> None:
        """Keep the last frame on screen until a key is pressed or the window is closed."""
        if not self._opened or self._closed or self.stop_requested:
            return
        while self.is_visible():
            if cv2.waitKey(100) != -1:
                break

    @property
    def view(self) -> View:
        """What the canvas for this window should show, fitted to the window."""
        view = self.controls.view
        return replace(view, fit=self._area) if self._area else view

    @property
    def paused(self) -> bool:
        return self.controls.paused and not self.stop_requested

    def write(self, frame_bgr: np.ndarray, result: FrameResult) -> None:
        """Show the canvas and poll the keyboard and the window state."""
        if self._closed or self.stop_requested:
            return
        canvas_size = (frame_bgr.shape[1], frame_bgr.shape[0])
        if not self._opened:
            self.open(canvas_size)
        elif not self.is_visible():  # the user closed the window: do not reopen it
            self.stop_requested = True
            return
        notes = self.controls.notes()
        shown = frame_bgr
        if any(notes.values()):
            shown = frame_bgr.copy()
            draw_notes(shown, Style.for_height(shown.shape[0]), **notes)
        if self._area is not None:
            filled = letterbox(shown, self._area, self._letterbox)
            if filled is not shown:  # keep our own buffer, never the loop's canvas
                shown = self._letterbox = filled
        cv2.imshow(self.name, shown)
        key = cv2.waitKey(PAUSED_POLL_MS if self.controls.paused else self._delay_ms())
        self.controls.handle_key(key, frame_bgr)
        if self.controls.quit or not self.is_visible():
            self.stop_requested = True
        else:
            self._area = self._picture_area()

    def is_visible(self) -> bool:
        """True while the window is open (False once the user closed it)."""
        try:
            return cv2.getWindowProperty(self.name, cv2.WND_PROP_VISIBLE) >= 1
        except cv2.error:  # some backends raise once the window is gone
            return False

    def close(self) -> None:
        """Destroy the window (safe twice)."""
        if self._closed:
            return
        self._closed = True
        if self._opened:
            try:
                cv2.destroyWindow(self.name)
                cv2.waitKey(1)
            except cv2.error:
                pass


class VideoSink(_Closing):
    """Writes annotated frames to a video file (``.mp4`` mp4v, ``.avi`` MJPG).

    The writer opens on the first frame, whose size fixes the video's size.

    Args:
        path: output file; its folder must exist.
        fps: frame rate stored in the file.
        view: what the recorded canvas shows (default: the panel, tags and FPS, as
            the window; ``dashboard.RAW_VIEW``: the frame at its size with boxes and tags).
    """

    draws = True

    def __init__(
        self, path: str | os.PathLike, fps: float = 30.0, view: View = DEFAULT_VIEW
    ) -> None:
        self.path = Path(path)
        self.view = view
        self.fps = float(fps) if fps and fps > 0 else 30.0
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self._closed = False
        self.frames_written = 0

    def write(self, frame_bgr: np.ndarray, result: FrameResult) -> None:
        """Append one frame (resized to the first frame's size if it differs)."""
        if self._closed:
            return
        h, w = frame_bgr.shape[:2]
        if self._writer is None:
            codec = "MJPG" if self.path.suffix.lower() == ".avi" else "mp4v"
            writer = cv2.VideoWriter(
                str(self.path), cv2.VideoWriter_fourcc(*codec), self.fps, (w, h)
            )
            if not writer.isOpened():
                raise SinkError(f"cannot write video {self.path} (codec {codec})")
            self._writer, self._size = writer, (w, h)
        if (w, h) != self._size:
            frame_bgr = cv2.resize(frame_bgr, self._size)
        if self.frames_written % 10 == 0:
            self._check_space()
        self._writer.write(frame_bgr)
        self.frames_written += 1

    def _check_space(self) -> None:
        """OpenCV's writer never reports a failed write: stop before the disk is full."""
        try:
            free = shutil.disk_usage(self.path.parent).free
        except OSError:
            return
        if free < MIN_FREE_BYTES:
            self.close()
            raise SinkError(
                f"disk full: {free // 1024} KiB left beside {self.path}; stopped writing the "
                f"video after {self.frames_written} frames",
                exit_status=1,
            )

    def close(self) -> None:
        """Finish the file (safe twice). ``error`` is set when it cannot be read back whole."""
        self._closed = True
        if self._writer is None:
            return
        self._writer.release()
        self._writer = None
        readable = _frames_in(self.path)
        if readable < self.frames_written:
            self.error = (
                f"the video {self.path} is incomplete: {readable} of {self.frames_written} "
                "frames can be read back (disk full, or a file-size limit?)"
            )


def _frames_in(path: Path) -> int:
    """Frames a video file can be read back with (0 when it does not open)."""
    capture = cv2.VideoCapture(str(path))
    try:
        return int(max(0.0, capture.get(cv2.CAP_PROP_FRAME_COUNT))) if capture.isOpened() else 0
    finally:
        capture.release()


def _fmt(value: float, digits: int = 4) -> str:
    return f"{float(value):.{digits}f}"


def face_rows(
    result: FrameResult, card: ModelCard, frame_size: tuple[int, int] | None = None
) -> list[list[str]]:
    """The CSV rows of one frame, one per face (see :func:`csv_columns`).

    Args:
        result: the frame's faces.
        card: the model card: class names and per-AU decision thresholds.
        frame_size: (width, height); boxes are clipped to the frame when given.

    A head that is ``None`` (not trained) leaves its cells empty.
    """
    rows = []
    for face in result.faces:
        det, pred = face.detection, face.prediction
        box = np.asarray(det.xyxy, np.float64)
        if frame_size is not None:
            box = np.clip(box, 0, [frame_size[0], frame_size[1]] * 2)
        row = [
            str(result.index),
            _fmt(result.timestamp_ms, 1),
            str(face.track_id),
            *(_fmt(v, 1) for v in box),
            _fmt(det.score),
        ]
        if pred.expr_probs is not None:
            row += [_fmt(p) for p in pred.expr_probs]
            row.append(card.expressions[int(np.argmax(pred.expr_probs))])
        else:
            row += [""] * (len(card.expressions) + 1)
        row += [_fmt(v) for v in pred.va] if pred.va is not None else ["", ""]
        if pred.au_probs is not None:
            thresholds = card.au_thresholds
            row += [_fmt(p) for p in pred.au_probs]
            row += [str(int(p >= t)) for p, t in zip(pred.au_probs, thresholds, strict=True)]
        else:
            row += [""] * (2 * len(card.aus))
        rows.append(row)
    return rows


class CsvSink(_Closing):
    """Writes one row per face per frame; every frame's rows go to disk at once.

    A write that fails (disk full, file-size limit) raises :class:`SinkError` (exit status
    1) after cutting the file back to the end of the last whole frame, so every row in it
    is complete.

    Args:
        path: output CSV file; its folder must exist.
        card: the model card (class and AU names, AU thresholds).
    """

    def __init__(self, path: str | os.PathLike, card: ModelCard) -> None:
        self.path = Path(path)
        self.card = card
        try:
            self._file = open(self.path, "wb", buffering=0)  # noqa: SIM115
        except OSError as exc:
            raise SinkError(f"cannot write CSV {self.path}: {exc.strerror}") from exc
        self._good = 0  # bytes of whole frames on disk
        self.rows_written = 0
        self._append([list(csv_columns(card))])

    def _append(self, rows: list[list[str]]) -> None:
        text = io.StringIO()
        csv.writer(text).writerows(rows)
        data = memoryview(text.getvalue().encode("utf-8"))
        try:
            while data:
                n = self._file.write(data)
                data = data[n or 0 :]
                if not n:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError as exc:
            self._truncate_to_good()
            kept = f"its {self.rows_written} rows written before are kept"
            raise write_failed(self.path, exc, kept) from None
        self._good = self._file.tell()

    def _truncate_to_good(self) -> None:
        with contextlib.suppress(OSError):
            os.ftruncate(self._file.fileno(), self._good)
        self._file.close()

    def write(self, frame_bgr: np.ndarray, result: FrameResult) -> None:
        """Append this frame's faces (on disk when this returns)."""
        if self._file.closed:
            return
        size = (frame_bgr.shape[1], frame_bgr.shape[0]) if frame_bgr is not None else None
        rows = face_rows(result, self.card, size)
        if rows:
            self._append(rows)
            self.rows_written += len(rows)

    def close(self) -> None:
        """Close the file (safe twice)."""
        if not self._file.closed:
            self._file.close()
