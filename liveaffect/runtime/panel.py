"""The side panel: one card per face with expression bars, a valence/arousal circumplex
with a fading trail, and AU bars with the card's thresholds marked.

Everything that does not change from frame to frame (labels, bar backgrounds, axes,
quadrant words, threshold ticks) is drawn once per canvas height into a template;
a frame copies the template and draws only the bars, dots, trails and titles. The
geometry comes from :mod:`liveaffect.runtime.panel_layout`.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Sequence

import cv2
import numpy as np

from liveaffect.bundle import ModelCard
from liveaffect.runtime.panel_layout import (
    Box,
    CardLayout,
    PanelLayout,
    au_text,
    order_faces,
    panel_layout,
    panel_note,
    split_cards,
)
from liveaffect.runtime.style import (
    AXIS_COLOR,
    BACKGROUND,
    BAR_BACK_COLOR,
    BAR_COLOR,
    CARD_COLOR,
    DIM_TEXT_COLOR,
    TEXT_COLOR,
    Style,
    blit_text,
    id_color,
    put_text,
    text_size,
)
from liveaffect.types import FaceResult, FrameResult

QUADRANTS = (("tense", -1, 1), ("excited", 1, 1), ("sad", -1, -1), ("calm", 1, -1))
"""Circumplex quadrant words and their (valence, arousal) signs (Russell, 1980)."""

TRAIL_MS = 2000.0
FADE_LEVELS = 4
MAX_SIZES = 3
"""Panel templates kept at once: the window's height and the recording's, plus one while
a window is being resized."""


class VaTrails:
    """The last ``window_ms`` of every face's valence/arousal, for the fading trail.

    ``update`` is idempotent per timestamp, so drawing a frame twice (window and
    video file) adds its points once.
    """

    def __init__(self, window_ms: float = TRAIL_MS, max_points: int = 64) -> None:
        if window_ms <= 0:
            raise ValueError(f"window_ms must be positive, got {window_ms}")
        self.window_ms = float(window_ms)
        self.max_points = int(max_points)
        self._points: dict[int, deque[tuple[float, float, float]]] = {}

    def update(self, timestamp_ms: float, faces: Sequence[FaceResult]) -> None:
        """Add this frame's points and drop those older than the window."""
        for face in faces:
            va = face.prediction.va
            if va is None:
                continue
            trail = self._points.setdefault(face.track_id, deque(maxlen=self.max_points))
            if not trail or timestamp_ms > trail[-1][0]:
                trail.append((float(timestamp_ms), float(va[0]), float(va[1])))
        for track_id in list(self._points):
            trail = self._points[track_id]
            while trail and timestamp_ms - trail[0][0] > self.window_ms:
                trail.popleft()
            if not trail:
                del self._points[track_id]

    def trail(self, track_id: int) -> list[tuple[float, float, float]]:
        """(timestamp_ms, valence, arousal) points of one face, oldest first."""
        return list(self._points.get(track_id, ()))


def _fill(image: np.ndarray, box: Box, color) -> None:
    x1, y1, x2, y2 = box
    if x2 > x1 and y2 > y1:
        cv2.rectangle(image, (x1, y1), (x2 - 1, y2 - 1), color, -1)


def _rows(box: Box, n: int) -> list[Box]:
    x1, y1, x2, y2 = box
    step = (y2 - y1) / n
    return [(x1, round(y1 + i * step), x2, round(y1 + (i + 1) * step)) for i in range(n)]


class Panel:
    """Draws the side panel for one model card.

    Args:
        card: the model card (label names, AU thresholds, which heads are trained).
        trail_ms: how much valence/arousal history the circumplex shows.
    """

    def __init__(self, card: ModelCard, trail_ms: float = TRAIL_MS) -> None:
        self.card = card
        self.heads = tuple(h for h in ("expr", "va", "au") if card.trained(h))
        self.weak_aus = card.weak_aus()
        untrained = [h for h in ("expr", "va", "au") if not card.trained(h)]
        self.note = panel_note(untrained, self.weak_aus)
        self.trails = VaTrails(trail_ms)
        self._au_labels = [au_text(a, self.weak_aus) for a in card.aus]
        self._geometry: dict[int, PanelLayout] = {}
        self._layouts: dict[int, tuple[PanelLayout, np.ndarray]] = {}
        self._order: list[int] = []
        self._frame: int | None = None

    def layout(self, height: int) -> PanelLayout:
        """The panel's geometry for a canvas ``height`` pixels tall (cached)."""
        if height not in self._geometry:
            if len(self._geometry) >= 64:  # sizes tried while fitting resized windows
                self._geometry.clear()
            card = self.card
            self._geometry[height] = panel_layout(
                Style.for_height(height),
                self.heads,
                card.expressions,
                card.aus,
                self.note,
                self.weak_aus,
            )
        return self._geometry[height]

    def width_for(self, height: int) -> int:
        """Panel width for a canvas ``height`` pixels tall."""
        return self.layout(height).width

    def update(self, result: FrameResult) -> list[FaceResult]:
        """Order this frame's faces and extend the trails (once per frame index)."""
        if self._frame != result.index:
            self._frame = result.index
            ordered = order_faces(result.faces, self._order)
            self._order = [f.track_id for f in ordered]
            self.trails.update(result.timestamp_ms, result.faces)
        by_id = {f.track_id: f for f in result.faces}
        return [by_id[t] for t in self._order if t in by_id]

    def draw(self, region: np.ndarray, result: FrameResult) -> None:
        """Draw the panel for ``result`` into ``region`` (canvas height x panel width), in place."""
        layout, template = self._cached(region.shape[0])
        region[:] = template
        faces = self.update(result)
        shown, more = split_cards(faces, layout.max_cards)
        style = layout.style
        header = f"faces {len(result.faces)}" + (f" | {self.note}" if self.note else "")
        put_text(region, header, (layout.header[0], style.pad), style.font, DIM_TEXT_COLOR)
        for slot in layout.cards[len(shown) :]:
            _fill(region, slot.rect, BACKGROUND)
        for face, slot in zip(shown, layout.cards, strict=False):
            self._card(region, slot, face, style, result.timestamp_ms)
        if more:
            ids = " ".join(f"#{f.track_id}" for f in faces[len(shown) :][:6])
            text = f"+{more} more ({ids}{' ...' if more > 6 else ''})"
            put_text(region, text, (layout.footer[0], layout.footer[1] + style.pad), style.font,
                     TEXT_COLOR)  # fmt: skip

    # -- templates -------------------------------------------------------------------------

    def _cached(self, height: int) -> tuple[PanelLayout, np.ndarray]:
        if height not in self._layouts:
            layout = self.layout(height)
            style = layout.style
            template = np.empty((layout.height, layout.width, 3), np.uint8)
            template[:] = BACKGROUND
            for slot in layout.cards:
                self._card_template(template, slot, style)
            if len(self._layouts) >= MAX_SIZES:  # drop the oldest size (a resized window)
                del self._layouts[next(iter(self._layouts))]
            self._layouts[height] = (layout, template)
        return self._layouts[height]

    def _card_template(self, image: np.ndarray, slot: CardLayout, style: Style) -> None:
        _fill(image, slot.rect, CARD_COLOR)
        if slot.expr is not None:
            for name, (_, bar) in zip(self.card.expressions, self._expr_rows(slot.expr, style),
                                      strict=True):  # fmt: skip
                put_text(image, name, (slot.expr[0], bar[1] - 1), style.small, DIM_TEXT_COLOR)
                _fill(image, bar, BAR_BACK_COLOR)
        if slot.va is not None:
            self._circumplex(image, slot.va, style)
        if slot.au is not None:
            for k, (label, bar) in enumerate(self._au_rows(slot.au, style)):
                put_text(image, self._au_labels[k], label[:2], style.small, DIM_TEXT_COLOR)
                _fill(image, bar, BAR_BACK_COLOR)
                tick = bar[0] + round(self.card.au_thresholds[k] * (bar[2] - bar[0]))
                _fill(image, (tick, bar[1] - 2, tick + 1, bar[1]), TEXT_COLOR)  # the threshold,
                _fill(image, (tick, bar[3], tick + 1, bar[3] + 2), TEXT_COLOR)  # above and below

    @functools.lru_cache(maxsize=64)  # noqa: B019 - a few boxes per panel, panel lives long
    def _expr_rows(self, box: Box, style: Style) -> list[tuple[Box, Box]]:
        label_w = max(text_size(n, style.small)[0] for n in self.card.expressions) + style.pad
        out = []
        for row in _rows(box, len(self.card.expressions)):
            mid = (row[1] + row[3]) // 2
            half = max(2, (row[3] - row[1]) // 3)
            out.append((row, (row[0] + label_w, mid - half, row[2], mid + half)))
        return out

    @functools.lru_cache(maxsize=64)  # noqa: B019
    def _au_rows(self, box: Box, style: Style) -> list[tuple[Box, Box]]:
        x1, y1, x2, y2 = box
        col_w = (x2 - x1 - style.pad) // 2
        out = []
        for col in range(2):
            left = x1 + col * (col_w + style.pad)
            for row in _rows((left, y1, left + col_w, y2), 6):
                bar_top = row[1] + style.small_h + 1
                bar_h = max(2, min(6, row[3] - bar_top - 1))
                out.append((row, (row[0], bar_top, row[2] - style.pad, bar_top + bar_h)))
        return out

    def _circumplex(self, image: np.ndarray, box: Box, style: Style) -> None:
        x1, y1, x2, y2 = box
        cx, cy, r = (x1 + x2) // 2, (y1 + y2) // 2, (min(x2 - x1, y2 - y1) // 2) - 1
        cv2.circle(image, (cx, cy), r, AXIS_COLOR, 1, cv2.LINE_AA)
        cv2.line(image, (cx - r, cy), (cx + r, cy), AXIS_COLOR, 1)
        cv2.line(image, (cx, cy - r), (cx, cy + r), AXIS_COLOR, 1)
        scale = style.small * 0.85
        for word, sv, sa in QUADRANTS:
            w, h, _ = text_size(word, scale)
            x = x2 - w - 1 if sv > 0 else x1 + 1
            y = y1 + 1 if sa > 0 else y2 - h - 3
            put_text(image, word, (x, y), scale, DIM_TEXT_COLOR)
        put_text(image, "V", (cx + r - text_size("V", scale)[0], cy + 2), scale, DIM_TEXT_COLOR)
        put_text(image, "A", (cx + 3, cy - r), scale, DIM_TEXT_COLOR)

    # -- per frame -------------------------------------------------------------------------

    def _card(self, image, slot: CardLayout, face: FaceResult, style: Style, now_ms: float):
        color, pred = id_color(face.track_id), face.prediction
        _fill(image, (slot.rect[0], slot.rect[1], slot.rect[0] + max(2, style.pad // 2),
                      slot.rect[3]), color)  # fmt: skip
        title = f"#{face.track_id}"
        if pred.expr_probs is not None:
            k = int(np.argmax(pred.expr_probs))
            title += f" {self.card.expressions[k]} {float(pred.expr_probs[k]):.2f}"
        if pred.va is not None and "va" in self.heads:
            title += f"  V {float(pred.va[0]):+.2f} A {float(pred.va[1]):+.2f}"
        put_text(image, title, slot.title[:2], style.font, color)
        if slot.expr is not None and pred.expr_probs is not None:
            self._expr_bars(image, slot.expr, pred.expr_probs, color, style)
        if slot.va is not None and pred.va is not None:
            self._va_dot(image, slot.va, face.track_id, pred.va, color, now_ms)
        if slot.au is not None and pred.au_probs is not None:
            self._au_bars(image, slot.au, pred.au_probs, color, style)

    def _expr_bars(self, image, box: Box, probs, color, style: Style) -> None:
        winner = int(np.argmax(probs))
        values = np.clip(probs, 0.0, 1.0).tolist()
        for k, (row, bar) in enumerate(self._expr_rows(box, style)):
            p = values[k]
            end = bar[0] + round(p * (bar[2] - bar[0]))
            _fill(image, (bar[0], bar[1], end, bar[3]), color if k == winner else BAR_COLOR)
            if k == winner:
                name = self.card.expressions[k]
                blit_text(image, name, (row[0], bar[1] - 1), style.small, TEXT_COLOR, CARD_COLOR)
                cv2.rectangle(image, (row[0] - 2, row[1]), (row[2], row[3] - 1), color, 1)

    def _au_bars(self, image, box: Box, probs, color, style: Style) -> None:
        thresholds, values = self.card.au_thresholds, np.clip(probs, 0.0, 1.0).tolist()
        for k, (label, bar) in enumerate(self._au_rows(box, style)):
            p, t = values[k], float(thresholds[k])
            active = p >= t
            end = bar[0] + round(p * (bar[2] - bar[0]))
            _fill(image, (bar[0], bar[1], end, bar[3]), color if active else BAR_COLOR)
            if active:
                blit_text(image, self._au_labels[k], label[:2], style.small, color, CARD_COLOR)

    def _va_dot(self, image, box: Box, track_id: int, va, color, now_ms: float) -> None:
        x1, y1, x2, y2 = box
        center = np.array([(x1 + x2) / 2, (y1 + y2) / 2])
        r = min(x2 - x1, y2 - y1) / 2 - 2
        trail = np.asarray(self.trails.trail(track_id), np.float64).reshape(-1, 3)
        if len(trail) >= 2:
            xy = center + np.clip(trail[:, 1:], -1, 1) * (r, -r)
            xy = np.round(xy).astype(np.int32)
            fade = np.clip(1.0 - (now_ms - trail[1:, 0]) / self.trails.window_ms, 0.0, 1.0)
            levels = np.minimum((fade * FADE_LEVELS).astype(int), FADE_LEVELS - 1)
            back, col = np.array(CARD_COLOR, float), np.array(color, float)
            for level in set(levels.tolist()):  # one polylines call per shade
                shade = back + (level + 1) / FADE_LEVELS * (col - back)
                segments = [xy[i : i + 2] for i in np.flatnonzero(levels == level)]
                cv2.polylines(image, segments, False, tuple(int(c) for c in shade), 1, cv2.LINE_AA)
        dot = max(3, round(r / 12))
        v, a = (float(min(1.0, max(-1.0, x))) for x in va[:2])
        point = (round(center[0] + v * r), round(center[1] - a * r))
        cv2.circle(image, point, dot, color, -1, cv2.LINE_AA)
        cv2.circle(image, point, dot, TEXT_COLOR, 1, cv2.LINE_AA)
