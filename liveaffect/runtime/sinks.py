"""Where processed frames go: an annotated video, a CSV of faces (the window: ``window.py``).

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
from pathlib import Path

import cv2
import numpy as np

from liveaffect.bundle import ModelCard
from liveaffect.labels import au_column
from liveaffect.runtime.dashboard import DEFAULT_VIEW, View
from liveaffect.types import FrameResult, Sink


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

    def __reduce__(self):
        # pickled with its exit status (the streaming process sends its errors pickled)
        return type(self), (str(self), self.exit_status)


DISK_FULL_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EFBIG, *(getattr(errno, n) for n in ("EDQUOT",) if hasattr(errno, n))}
)
MIN_FREE_BYTES = 1 << 20
"""A video stops being written when its disk has less than this left (1 MiB)."""


def write_failed(path: Path | str, exc: OSError, kept: str) -> SinkError:
    """The one-line error for a failed write; ``kept`` says what the file still holds."""
    what = "disk full" if exc.errno in DISK_FULL_ERRNOS else "write failed"
    return SinkError(f"{what}: cannot write {path} ({exc.strerror}); {kept}", exit_status=1)


class ClosingSink(Sink):
    """Context-manager plumbing shared by the sinks (``draws``, ``stop_requested``: False)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class VideoSink(ClosingSink):
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
            even = (w + w % 2, h + h % 2)  # both codecs drop an odd last row or column
            writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*codec), self.fps, even)
            if not writer.isOpened():
                raise SinkError(f"cannot write video {self.path} (codec {codec})")
            self._writer, self._size = writer, (w, h)
        if (w, h) != self._size:
            frame_bgr = cv2.resize(frame_bgr, self._size)
        if self._size[0] % 2 or self._size[1] % 2:  # pad with black: every pixel is kept
            right, bottom = self._size[0] % 2, self._size[1] % 2
            frame_bgr = cv2.copyMakeBorder(frame_bgr, 0, bottom, 0, right, cv2.BORDER_CONSTANT)
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


class CsvSink(ClosingSink):
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
