"""Geometry of the side panel, without drawing: which faces get cards, and where things go.

The panel sits right of the video, as tall as the canvas: a header line, up to four
card slots (fewer when the canvas is too short to keep the text readable), and a
"+N more" line. A card holds a title line and, side by side, the heads the model
card marks as trained: expression bars, the valence/arousal circumplex, and the AU
bars in two columns of six. An untrained head gets no space at all; the header says
once which heads are hidden. AUs the model card says are found poorly on new faces
(``ModelCard.weak_aus``) carry a ``?`` after their name, which the header explains.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from liveaffect.bundle import WEAK_AU_F1
from liveaffect.labels import au_label
from liveaffect.runtime.style import Style, text_size
from liveaffect.types import FaceResult

Box = tuple[int, int, int, int]
"""(x1, y1, x2, y2) in panel pixels, x2/y2 exclusive."""

MAX_CARDS = 4
HEAD_NAMES = {"expr": "expression", "va": "valence/arousal", "au": "AU"}


WEAK_MARK = "?"
"""After the name of an AU the card says is found poorly on new faces."""


def au_text(name: str, weak_aus: Collection[str] = ()) -> str:
    """An AU's label in the panel: ``AU12 lip corner puller``, ``AU10 upper lip raiser?``."""
    return au_label(name) + (WEAK_MARK if name in weak_aus else "")


def panel_note(untrained: Sequence[str], weak_aus: Collection[str] = ()) -> str | None:
    """The one header note: hidden heads (``AU head not trained: hidden``) and what the
    mark after weak AUs means."""
    notes = []
    if untrained:
        names = " and ".join(HEAD_NAMES.get(h, h) for h in untrained)
        heads = "heads" if len(untrained) > 1 else "head"
        notes.append(f"{names} {heads} not trained: hidden")
    if weak_aus:
        notes.append(f"AU{WEAK_MARK}: F1 < {WEAK_AU_F1:g} on new faces")
    return " | ".join(notes) or None


def order_faces(
    faces: Sequence[FaceResult], previous: Sequence[int] = (), stickiness: float = 1.25
) -> list[FaceResult]:
    """Largest faces first, without cards swapping places over small size changes.

    With no ``previous`` order the faces are sorted by box area (ties: lower id
    first). Otherwise faces keep their previous relative order unless one is more
    than ``stickiness`` times the area of the face ahead of it; new faces join by size.

    Args:
        faces: this frame's faces.
        previous: track ids in the order they were shown last frame.
        stickiness: area ratio needed to overtake (>= 1; 1 = pure size order).
    """
    area = {f.track_id: max(0.0, f.detection.width) * max(0.0, f.detection.height) for f in faces}
    by_id = {f.track_id: f for f in faces}
    rank = {tid: i for i, tid in enumerate(previous)}
    # start from the previous order (known ids) then the new ones, by size
    ids = sorted(by_id, key=lambda t: (rank.get(t, len(rank)), -area[t], t))
    if not rank:
        return [by_id[t] for t in sorted(by_id, key=lambda t: (-area[t], t))]
    swapped = True
    while swapped:  # bubble: a face moves up only past faces it clearly outgrew
        swapped = False
        for i in range(len(ids) - 1):
            a, b = ids[i], ids[i + 1]
            if area[b] > stickiness * area[a] or (a not in rank and area[b] > area[a]):
                ids[i], ids[i + 1] = b, a
                swapped = True
    return [by_id[t] for t in ids]


@dataclass(frozen=True)
class CardLayout:
    """One card slot: its rectangle, its title line and each shown head's area (or None)."""

    rect: Box
    title: Box
    expr: Box | None
    va: Box | None
    au: Box | None


@dataclass(frozen=True)
class PanelLayout:
    """The whole panel: size, header, card slots and the "+N more" line."""

    width: int
    height: int
    header: Box
    cards: tuple[CardLayout, ...]
    footer: Box
    style: Style

    @property
    def max_cards(self) -> int:
        return len(self.cards)


def _expr_width(style: Style, expressions: Sequence[str]) -> int:
    label = max(text_size(name, style.small)[0] for name in expressions)
    return label + style.pad + round(1.2 * label)


def _au_col_width(style: Style, aus: Sequence[str], weak_aus: Collection[str]) -> int:
    return max(text_size(au_text(a, weak_aus), style.small)[0] for a in aus) + style.pad


def min_card_body(style: Style, heads: Sequence[str]) -> int:
    """The shortest card body that keeps every row of the shown heads readable."""
    need = 0
    if "expr" in heads:
        need = max(need, 8 * style.small_h)
    if "au" in heads:
        need = max(need, 6 * (style.small_h + 4))
    if "va" in heads:
        need = max(need, 6 * style.small_h)
    return need


def _columns(
    style: Style,
    heads: Sequence[str],
    expressions: Sequence[str],
    aus: Sequence[str],
    side: int,
    weak_aus: Collection[str],
) -> list[tuple[str, int]]:
    """Each shown head's column in a card, left to right, with its width (``side``: the
    circumplex's)."""
    columns: list[tuple[str, int]] = []
    if "expr" in heads:
        columns.append(("expr", _expr_width(style, expressions)))
    if "va" in heads:
        columns.append(("va", side))  # the circumplex is square
    if "au" in heads:
        columns.append(("au", 2 * _au_col_width(style, aus, weak_aus) + style.pad))
    return columns


def _card(style: Style, columns: Sequence[tuple[str, int]], slot: Box, body: int) -> CardLayout:
    """One card inside its slot ``(x1, y1, x2, y2)``: title line, then the head columns."""
    pad = style.pad
    rect = (slot[0], slot[1] + pad // 2, slot[2], slot[3] - pad // 2)
    top = rect[1] + pad + style.line_h
    areas: dict[str, Box] = {}
    x = rect[0] + pad
    for name, w in columns:
        if name == "va":  # square, in the middle of a taller body
            y = top + max(0, body - w) // 2
            areas[name] = (x, y, x + w, y + min(w, body))
        else:
            areas[name] = (x, top, x + w, top + body)
        x += w + 2 * pad
    return CardLayout(
        rect=rect,
        title=(rect[0] + pad, rect[1] + pad // 2, rect[2] - pad, top),
        expr=areas.get("expr"),
        va=areas.get("va"),
        au=areas.get("au"),
    )


def panel_layout(
    style: Style,
    heads: Sequence[str],
    expressions: Sequence[str],
    aus: Sequence[str],
    note: str | None = None,
    weak_aus: Collection[str] = (),
) -> PanelLayout:
    """Lay the panel out for a canvas ``style.height`` tall.

    Args:
        style: sizes for this canvas.
        heads: the heads to show (trained ones), any of ``expr``, ``va``, ``au``.
        expressions: expression names (their widest sets the bar labels' width).
        aus: AU names.
        note: the header note (its width counts).
        weak_aus: AUs whose label carries the weak mark (its width counts).
    """
    pad, height = style.pad, style.height
    line = style.line_h
    title_h = line
    body = min_card_body(style, heads)
    avail = height - 2 * line
    slot_min = title_h + body + 3 * pad
    n = max(1, min(MAX_CARDS, avail // max(1, slot_min)))
    slot_h = avail // n
    # the circumplex is as large as with MAX_CARDS cards, so fewer, taller cards do not
    # make the panel wider (its width must grow with the height: Dashboard's fit search)
    side = max(body, avail // MAX_CARDS - title_h - 3 * pad)
    body = max(body, slot_h - title_h - 3 * pad)
    columns = _columns(style, heads, expressions, aus, side, weak_aus)
    inner = sum(w for _, w in columns) + 2 * pad * max(0, len(columns) - 1)
    title_w = text_size("#000 Happiness 0.00  V +0.00 A +0.00", style.font)[0]
    header_w = text_size(f"faces 00 | {note or ''}", style.font)[0]
    width = max(inner + 4 * pad, title_w + 4 * pad, header_w + 2 * pad)
    cards = [
        _card(style, columns, (pad, line + k * slot_h, width - pad, line + (k + 1) * slot_h), body)
        for k in range(n)
    ]
    return PanelLayout(
        width=int(width),
        height=int(height),
        header=(pad, 0, width - pad, line),
        cards=tuple(cards),
        footer=(pad, height - line, width - pad, height),
        style=style,
    )


def split_cards(faces: Sequence[FaceResult], max_cards: int) -> tuple[list[FaceResult], int]:
    """The faces that get a card (already ordered) and how many are left over."""
    shown = list(faces[:max_cards])
    return shown, max(0, len(faces) - len(shown))
