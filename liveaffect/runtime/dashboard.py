"""The live view: the video with coloured boxes and tags, the side panel to its right,
and the heads-up text (FPS, timings, help) over the video.

:class:`Dashboard` turns a frame and its :class:`~liveaffect.types.FrameResult` into
one canvas. The video is never covered by the panel: the canvas grows to the right.
Frames shorter than ``min_height`` are enlarged first so that text stays readable
(a 640x360 clip becomes 960x540 plus the panel); everything else is sized from the
canvas height (:class:`~liveaffect.runtime.style.Style`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, replace

import cv2
import numpy as np

from liveaffect.bundle import ModelCard
from liveaffect.preprocess import to_bgr
from liveaffect.runtime.hud import corner_boxes, draw_hud
from liveaffect.runtime.panel import Panel
from liveaffect.runtime.style import BACKGROUND, Style
from liveaffect.runtime.tags import draw_faces
from liveaffect.types import FrameResult

MIN_HEIGHT = 540
"""Frames shorter than this are enlarged on the canvas (text needs the pixels)."""
MIN_FIT_HEIGHT = 240
"""A canvas fitted to a small window is never drawn shorter than this (the window then
shrinks it further)."""
MAX_FIT_HEIGHT = 2160
"""Nor taller than this, however large the window."""


@dataclass(frozen=True)
class View:
    """What the canvas shows besides the video and the boxes.

    Attributes:
        panel: the side panel with one card per face.
        tags: the per-face tags next to the boxes.
        fps: the FPS in the corner.
        timings: the per-stage timings under the FPS.
        help: the key list over the video.

    Passing notes (the key summary at the start, PAUSED, "saved ...") are not part of
    the canvas: the window adds them (:func:`~liveaffect.runtime.hud.draw_notes`), so
    snapshots and recordings do not carry them.
    """

    panel: bool = True
    tags: bool = True
    fps: bool = True
    timings: bool = False
    help: bool = False
    fit: tuple[int, int] | None = None
    """Draw the canvas as large as fits inside this (width, height), e.g. a window's picture
    area, so text and lines are drawn for the pixels on screen; None: at the frame's own
    height, enlarged to the dashboard's ``min_height`` when shorter."""

    def toggled(self, name: str) -> View:
        """A copy with the boolean ``name`` flipped."""
        return replace(self, **{name: not getattr(self, name)})


DEFAULT_VIEW = View()
"""Video, boxes, tags, side panel and FPS (the window at start, ``--output``)."""
RAW_VIEW = View(panel=False, fps=False)
"""Boxes and tags at the source's size (``--output-raw``)."""


class StageMeans:
    """Mean milliseconds per stage over the last ``window`` frames (for the timings view)."""

    def __init__(self, window: int = 30) -> None:
        self.window = max(1, int(window))
        self._ms: dict[str, deque[float]] = {}

    def add(self, timings_ms: Mapping[str, float]) -> None:
        for name, ms in timings_ms.items():
            self._ms.setdefault(name, deque(maxlen=self.window)).append(float(ms))

    def means(self) -> dict[str, float]:
        return {name: float(np.mean(v)) for name, v in self._ms.items() if v}


class Dashboard:
    """Draws the live view for one model card.

    Args:
        card: the model card (labels, AU thresholds, trained heads).
        min_height: frames shorter than this are enlarged to it (1: never).
    """

    def __init__(self, card: ModelCard, min_height: int = MIN_HEIGHT) -> None:
        if min_height < 1:
            raise ValueError(f"min_height must be >= 1, got {min_height}")
        self.card = card
        self.min_height = int(min_height)
        self.panel = Panel(card)
        self._fitted: dict[tuple, int] = {}

    def canvas_height(self, frame_size: tuple[int, int], view: View = View()) -> int:
        """The canvas height for a frame of ``frame_size`` (width, height): the tallest that
        fits ``view.fit``, else the frame's, enlarged to ``min_height`` when the panel shows."""
        h = frame_size[1]
        if h < 1:
            return h
        if view.fit is None:
            return self.min_height if view.panel and h < self.min_height else h
        key = (frame_size, view.fit, view.panel)
        if key not in self._fitted:
            if len(self._fitted) >= 8:  # a window being resized asks for many sizes
                self._fitted.clear()
            self._fitted[key] = self._fit_height(frame_size, view)
        return self._fitted[key]

    def _fit_height(self, frame_size: tuple[int, int], view: View) -> int:
        """Binary search for the tallest canvas whose width fits ``view.fit`` (the panel's
        width does not grow in proportion to the height, so this is not one division)."""
        fit_w, fit_h = view.fit

        def width(height: int) -> int:
            video = round(frame_size[0] * height / frame_size[1])
            return video + (self.panel.width_for(height) if view.panel else 0)

        lo, hi = MIN_FIT_HEIGHT, max(MIN_FIT_HEIGHT, min(fit_h, MAX_FIT_HEIGHT))
        if width(hi) <= fit_w:
            return hi
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if width(mid) <= fit_w else (lo, mid)
        return lo

    def canvas_size(self, frame_size: tuple[int, int], view: View = View()) -> tuple[int, int]:
        """(width, height) of the canvas for a frame of ``frame_size`` (width, height)."""
        h = self.canvas_height(frame_size, view)
        w = round(frame_size[0] * h / frame_size[1]) if frame_size[1] > 0 else frame_size[0]
        return (w + self.panel.width_for(h) if view.panel else w), h

    def draw(
        self,
        frame_bgr: np.ndarray,
        result: FrameResult,
        view: View = View(),
        fps: float | None = None,
        timings_ms: Mapping[str, float] | None = None,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """Return a new canvas: the (enlarged) frame with boxes and tags, the panel, the HUD.

        Args:
            frame_bgr: the source frame (grey and BGRA are converted).
            result: what the pipeline found in it.
            view: what to show.
            fps: frames per second for the corner (shown when ``view.fps``).
            timings_ms: per-stage milliseconds (shown when ``view.timings``).
            out: a canvas from an earlier call to draw into (reused when its size
                still fits; saves allocating ~4 MB per frame).

        Returns:
            The canvas (``out`` itself when it was reused).
        """
        image = to_bgr(frame_bgr)
        h, w = image.shape[:2]
        if h == 0 or w == 0:
            return image.copy()
        cw, ch = self.canvas_size((w, h), view)
        scale = ch / h
        vw = round(w * scale)
        fits = out is not None and out.shape == (ch, cw, 3) and out.dtype == np.uint8
        canvas = out if fits else np.empty((ch, cw, 3), np.uint8)
        if scale == 1.0:
            canvas[:, :vw] = image
        else:
            smaller = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
            cv2.resize(image, (vw, ch), dst=canvas[:, :vw], interpolation=smaller)
        video = canvas[:, :vw]
        style = Style.for_height(ch)
        fps = fps if view.fps else None
        timings = (timings_ms or {}) if view.timings else None
        hud = corner_boxes(style, fps, timings)
        draw_faces(video, result.faces, style, self.card.expressions, scale, view.tags, hud)
        if view.panel:
            self.panel.draw(canvas[:, vw:], result)
        else:
            self.panel.update(result)  # keep the trails going while the panel is hidden
        draw_hud(
            video,
            style,
            fps=fps,
            timings_ms=timings,
            help_overlay=view.help,
        )
        return canvas


def blank_canvas(size: tuple[int, int]) -> np.ndarray:
    """A panel-coloured canvas of (width, height), e.g. before the first frame."""
    canvas = np.empty((size[1], size[0], 3), np.uint8)
    canvas[:] = BACKGROUND
    return canvas
