"""The live window: an OpenCV (Qt) window that shows the drawn canvas and takes the keys.

Drawn at the window's own size (``View.fit``); :func:`letterbox` shows a canvas of
another shape pixel for pixel, centred on the panel colour, where Qt would stretch it.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace

import cv2
import numpy as np

from liveaffect.runtime.controls import Controls
from liveaffect.runtime.dashboard import View
from liveaffect.runtime.display import fit_window, screen_size
from liveaffect.runtime.hud import draw_notes
from liveaffect.runtime.sinks import ClosingSink
from liveaffect.runtime.style import BACKGROUND, Style
from liveaffect.types import FrameResult

PAUSED_POLL_MS = 30
"""How often a paused window looks at the keyboard."""


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


class WindowSink(ClosingSink):
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
    holds = True

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
        self._shown_index: int | None = None

    def open(self, canvas_size: tuple[int, int] | None = None) -> None:
        """Create the (resizable) window now: before any output file is opened."""
        if self._opened:
            return
        _point_qt_at_system_fonts()
        # FREERATIO: the picture area is the whole window, whatever shape it is dragged to
        # (write letterboxes every canvas to it); KEEPRATIO held it at the first canvas's
        # aspect ratio for good, Qt's grey filling the rest
        flags = cv2.WINDOW_NORMAL | cv2.WINDOW_FREERATIO | cv2.WINDOW_GUI_NORMAL
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
        again = result.index == self._shown_index  # paused, or a still image held
        self._shown_index = result.index
        # waitKeyEx: the whole code, so an arrow key is not read as a letter (handle_key)
        key = cv2.waitKeyEx(PAUSED_POLL_MS if self.controls.paused or again else self._delay_ms())
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
