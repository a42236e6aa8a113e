"""Where processed frames go: an OpenCV window, an annotated video, a CSV of faces.

Every sink implements :class:`liveaffect.types.Sink` and is a context manager whose
``close()`` is safe to call twice, so the end of a video, ``q``, Ctrl-C or an
exception always releases the window and flushes files. A sink whose ``draws``
attribute is True receives the drawn canvas for its ``view``
(:class:`~liveaffect.runtime.dashboard.View`), the others the raw frame.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import cv2
import numpy as np

from liveaffect.bundle import ModelCard
from liveaffect.runtime.controls import Controls
from liveaffect.runtime.dashboard import DEFAULT_VIEW, View
from liveaffect.runtime.hud import draw_notes
from liveaffect.runtime.style import Style
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
    """A sink cannot be opened (unwritable path, no video codec ...)."""


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


class WindowSink(_Closing):
    """Shows the drawn canvas in an OpenCV window and acts on its keys.

    The keys (:data:`liveaffect.runtime.hud.KEYS`) go to ``controls``: ``q``/Esc or
    closing the window sets ``stop_requested``; ``space`` sets ``paused`` (the live
    loop then shows the same frame until it is cleared); ``s`` saves the canvas as a
    PNG; ``p``, ``t``, ``h``/``?`` change ``view``. Passing notes (the key summary in
    the first seconds, PAUSED, the snapshot's path) are drawn on a copy, so the
    snapshots do not carry them.

    Args:
        name: the window title.
        controls: the keys' state (default: snapshots go to the current folder).
    """

    draws = True

    def __init__(self, name: str = "liveaffect", controls: Controls | None = None) -> None:
        self.name = name
        self.controls = controls if controls is not None else Controls()
        self._opened = False
        self._closed = False

    @property
    def view(self) -> View:
        """What the canvas for this window should show."""
        return self.controls.view

    @property
    def paused(self) -> bool:
        return self.controls.paused and not self.stop_requested

    def write(self, frame_bgr: np.ndarray, result: FrameResult) -> None:
        """Show the canvas and poll the keyboard and the window state."""
        if self._closed or self.stop_requested:
            return
        if not self._opened:
            _point_qt_at_system_fonts()
            cv2.namedWindow(self.name, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)
            self._opened = True
        elif not self.is_visible():  # the user closed the window: do not reopen it
            self.stop_requested = True
            return
        notes = self.controls.notes()
        shown = frame_bgr
        if any(notes.values()):
            shown = frame_bgr.copy()
            draw_notes(shown, Style.for_height(shown.shape[0]), **notes)
        cv2.imshow(self.name, shown)
        key = cv2.waitKey(PAUSED_POLL_MS if self.controls.paused else 1)
        self.controls.handle_key(key, frame_bgr)
        if self.controls.quit or not self.is_visible():
            self.stop_requested = True

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
        self._writer.write(frame_bgr)
        self.frames_written += 1

    def close(self) -> None:
        """Finish the file (safe twice)."""
        self._closed = True
        if self._writer is not None:
            self._writer.release()
            self._writer = None


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
    """Writes one row per face per frame; every frame's rows are flushed at once.

    Args:
        path: output CSV file; its folder must exist.
        card: the model card (class and AU names, AU thresholds).
    """

    def __init__(self, path: str | os.PathLike, card: ModelCard) -> None:
        self.path = Path(path)
        self.card = card
        try:
            self._file = open(self.path, "w", newline="", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise SinkError(f"cannot write CSV {self.path}: {exc.strerror}") from exc
        self._writer = csv.writer(self._file)
        self._writer.writerow(csv_columns(card))
        self._file.flush()
        self.rows_written = 0

    def write(self, frame_bgr: np.ndarray, result: FrameResult) -> None:
        """Append this frame's faces and flush them to disk."""
        if self._file.closed:
            return
        size = (frame_bgr.shape[1], frame_bgr.shape[0]) if frame_bgr is not None else None
        rows = face_rows(result, self.card, size)
        if rows:
            self._writer.writerows(rows)
            self._file.flush()
            self.rows_written += len(rows)

    def close(self) -> None:
        """Flush and close the file (safe twice)."""
        if not self._file.closed:
            self._file.flush()
            self._file.close()
