"""Text drawn over the video: FPS, per-stage timings, the key help, a pause badge, messages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from liveaffect.runtime.style import FPS_COLOR, TAG_COLOR, TEXT_COLOR, Style, put_text, text_size

KEYS: tuple[tuple[str, str], ...] = (
    ("q / Esc", "quit"),
    ("space", "pause / resume"),
    ("s", "save a snapshot (PNG)"),
    ("p", "show / hide the panel"),
    ("t", "show / hide stage timings"),
    ("h / ?", "show / hide this help"),
)
"""The live window's keys and what they do (the help overlay and the README list them)."""

HELP_LINE = "q quit | space pause | s snapshot | p panel | t timings | h help"
TIMED_STAGES = ("read", "detect", "track", "preprocess", "infer", "smooth", "draw")


def _box(image: np.ndarray, x: int, y: int, w: int, h: int, alpha: float = 0.75) -> None:
    """Darken a rectangle (clipped to the image) so text on it reads on any video."""
    H, W = image.shape[:2]
    x1, y1, x2, y2 = max(0, x), max(0, y), min(W, x + w), min(H, y + h)
    if x2 > x1 and y2 > y1:
        roi = image[y1:y2, x1:x2]
        roi[:] = (roi * (1.0 - alpha) + np.array(TAG_COLOR) * alpha).astype(np.uint8)


def text_block(
    image: np.ndarray, lines: Sequence[str], origin: tuple[int, int], style: Style, color=TEXT_COLOR
) -> tuple[int, int]:
    """Lines on a dark box whose top-left is ``origin``; returns the box's (width, height)."""
    if not lines:
        return 0, 0
    width = max(text_size(t, style.font)[0] for t in lines) + 2 * style.pad
    height = len(lines) * style.line_h + style.pad
    _box(image, origin[0], origin[1], width, height)
    for i, text in enumerate(lines):
        put_text(image, text, (origin[0] + style.pad, origin[1] + style.pad + i * style.line_h),
                 style.font, color)  # fmt: skip
    return width, height


def timing_lines(timings_ms: Mapping[str, float]) -> list[tuple[str, str]]:
    """(stage, ``5.31 ms``) in pipeline order (stages without a time are left out)."""
    return [(s, f"{timings_ms[s]:.2f} ms") for s in TIMED_STAGES if s in timings_ms]


def _timing_table(timings_ms: Mapping[str, float], style: Style) -> tuple[list, int, int]:
    rows = timing_lines(timings_ms) or [("timings", "...")]
    name_w = max(text_size(n, style.font)[0] for n, _ in rows) + 2 * style.pad
    value_w = max(text_size(v, style.font)[0] for _, v in rows)
    return rows, name_w, value_w


def fps_label(fps: float) -> str:
    """``FPS 24.3``; ``FPS --`` before a rate exists (the first frame, a still image)."""
    return f"FPS {fps:.1f}" if fps > 0 else "FPS --"


def corner_boxes(
    style: Style, fps: float | None, timings_ms: Mapping[str, float] | None
) -> list[tuple[int, int, int, int]]:
    """Where :func:`draw_hud` puts the FPS and the timings (xyxy), so tags can keep clear."""
    boxes, y = [], style.pad
    if fps is not None:
        w = text_size(fps_label(fps), style.font)[0] + 2 * style.pad
        boxes.append((style.pad, y, style.pad + w, y + style.line_h + style.pad))
        y = boxes[-1][3] + style.pad
    if timings_ms is not None:
        rows, name_w, value_w = _timing_table(timings_ms, style)
        w, h = name_w + value_w + 2 * style.pad, len(rows) * style.line_h + style.pad
        boxes.append((style.pad, y, style.pad + w, y + h))
    return boxes


def draw_hud(
    image: np.ndarray,
    style: Style,
    fps: float | None = None,
    timings_ms: Mapping[str, float] | None = None,
    help_overlay: bool = False,
) -> None:
    """Draw the heads-up text onto the video area ``image``, in place.

    Args:
        image: the video part of the canvas.
        style: sizes for this canvas.
        fps: frames per second, top-left.
        timings_ms: per-stage milliseconds to list under the FPS (None: hidden).
        help_overlay: the key list in the middle.
    """
    boxes = iter(corner_boxes(style, fps, timings_ms))
    if fps is not None:
        x1, y1, _, _ = next(boxes)
        text_block(image, [fps_label(fps)], (x1, y1), style, FPS_COLOR)
    if timings_ms is not None:
        x1, y1, x2, y2 = next(boxes)
        _box(image, x1, y1, x2 - x1, y2 - y1)
        rows, name_w, value_w = _timing_table(timings_ms, style)
        for i, (name, value) in enumerate(rows):
            top = y1 + style.pad + i * style.line_h
            put_text(image, name, (x1 + style.pad, top), style.font, TEXT_COLOR)
            right = x1 + style.pad + name_w + value_w - text_size(value, style.font)[0]
            put_text(image, value, (right, top), style.font, FPS_COLOR)
    if help_overlay:
        _help(image, style)


def draw_notes(
    image: np.ndarray,
    style: Style,
    help_line: bool = False,
    paused: bool = False,
    message: str | None = None,
) -> None:
    """Passing notes stacked at the bottom left, in place: the one-line key summary,
    ``PAUSED`` and a message (e.g. where a snapshot went)."""
    bottom = image.shape[0] - style.pad
    for text, color in (
        (HELP_LINE if help_line else None, TEXT_COLOR),
        ("PAUSED (space resumes)" if paused else None, FPS_COLOR),
        (message, TEXT_COLOR),
    ):
        if text:
            bottom -= style.line_h + style.pad
            text_block(image, [text], (style.pad, bottom), style, color)


def _help(image: np.ndarray, style: Style) -> None:
    """The key list, keys in one column and what they do in the next, centred."""
    h, w = image.shape[:2]
    key_w = max(text_size(k, style.font)[0] for k, _ in KEYS) + 3 * style.pad
    what_w = max(text_size(t, style.font)[0] for _, t in KEYS)
    bw, bh = key_w + what_w + 2 * style.pad, (len(KEYS) + 1) * style.line_h + style.pad
    x, y = max(0, (w - bw) // 2), max(0, (h - bh) // 2)
    _box(image, x, y, bw, bh, alpha=0.85)
    put_text(image, "keys", (x + style.pad, y + style.pad), style.font, FPS_COLOR)
    for i, (key, what) in enumerate(KEYS, start=1):
        top = y + style.pad + i * style.line_h
        put_text(image, key, (x + style.pad, top), style.font, FPS_COLOR)
        put_text(image, what, (x + style.pad + key_w, top), style.font, TEXT_COLOR)
