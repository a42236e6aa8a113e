"""How the live view looks at a given size: font scales, line widths, colours per face id.

Everything the drawing code sizes (text, bars, padding, line widths) comes from one
:class:`Style` made for the canvas height, so a 640x360 clip and a 1080p one look
alike once the window fits them to the screen.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
REFERENCE_HEIGHT = 720
"""Canvas height at which the style's scale is 1."""

BACKGROUND = (24, 24, 24)
"""BGR colour of the side panel."""
CARD_COLOR = (40, 40, 40)
TEXT_COLOR = (235, 235, 235)
DIM_TEXT_COLOR = (150, 150, 150)
BAR_BACK_COLOR = (62, 62, 62)
BAR_COLOR = (150, 150, 150)
AXIS_COLOR = (95, 95, 95)
FPS_COLOR = (0, 255, 255)
TAG_COLOR = (30, 30, 30)

_GOLDEN = 0.618033988749895


@lru_cache(maxsize=4096)
def id_color(track_id: int) -> tuple[int, int, int]:
    """A stable, bright BGR colour for a face id; consecutive ids get distant hues.

    Hues step by the golden ratio (so neighbours differ by ~222 degrees); the
    saturation alternates a little so that ids whose hues come close again still
    differ.
    """
    hue = (0.12 + int(track_id) * _GOLDEN) % 1.0
    sat = 0.75 if int(track_id) % 2 else 0.55
    r, g, b = colorsys.hsv_to_rgb(hue, sat, 1.0)
    return (round(b * 255), round(g * 255), round(r * 255))


@lru_cache(maxsize=8192)
def text_size(text: str, font_scale: float, thickness: int = 1) -> tuple[int, int, int]:
    """(width, height above the baseline, baseline depth) of ``text`` in pixels (cached)."""
    (w, h), base = cv2.getTextSize(text, FONT, font_scale, thickness)
    return w, h, base


def put_text(image, text: str, origin: tuple[int, int], scale: float, color, thick: int = 1):
    """Anti-aliased text whose line's top-left corner is ``origin`` (same baseline for any text)."""
    _, h, _ = text_size("Ag", scale, thick)
    cv2.putText(
        image, text, (int(origin[0]), int(origin[1]) + h), FONT, scale, color, thick, cv2.LINE_AA
    )


@lru_cache(maxsize=1024)
def _text_patch(text: str, scale: float, color, background) -> np.ndarray:
    w, _, _ = text_size(text, scale)
    _, h, base = text_size("Ag", scale)
    patch = np.empty((h + base, w + 2, 3), np.uint8)
    patch[:] = background
    put_text(patch, text, (0, 0), scale, color)
    patch.flags.writeable = False
    return patch


def blit_text(image, text: str, origin: tuple[int, int], scale: float, color, background) -> None:
    """:func:`put_text` on a flat ``background``, from a cache of rendered text (~10x faster
    than drawing it again, for labels that repeat every frame)."""
    patch = _text_patch(text, float(scale), tuple(color), tuple(background))
    x, y = int(origin[0]), int(origin[1])
    H, W = image.shape[:2]
    x2, y2 = min(W, x + patch.shape[1]), min(H, y + patch.shape[0])
    if x2 > max(0, x) and y2 > max(0, y):
        image[max(0, y) : y2, max(0, x) : x2] = patch[max(0, -y) : y2 - y, max(0, -x) : x2 - x]


@dataclass(frozen=True)
class Style:
    """Sizes for a canvas of a given height.

    Attributes:
        height: the canvas height the style was made for.
        font: font scale of ordinary text (tags, titles, HUD).
        small: font scale of bar labels.
        thick: line width of boxes and axes in pixels.
        pad: padding inside cards and tags in pixels.
    """

    height: int
    font: float
    small: float
    thick: int
    pad: int

    @classmethod
    def for_height(cls, height: int, min_font: float = 0.35) -> Style:
        """The style of a canvas ``height`` pixels tall (fonts never below ``min_font``)."""
        if height < 1:
            raise ValueError(f"height must be positive, got {height}")
        unit = height / REFERENCE_HEIGHT
        return cls(
            height=int(height),
            font=round(max(min_font, 0.5 * unit), 3),
            small=round(max(min_font * 0.9, 0.4 * unit), 3),
            thick=max(1, round(1.5 * unit)),
            pad=max(2, round(5 * unit)),
        )

    @property
    def line_h(self) -> int:
        """Height of one line of ordinary text, with spacing."""
        _, h, base = text_size("Ag", self.font)
        return h + base + self.pad

    @property
    def small_h(self) -> int:
        """Height of one bar label (text only)."""
        _, h, base = text_size("Ag", self.small)
        return h + base
