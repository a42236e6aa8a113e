"""Per-face boxes and compact tags (``#3 Happiness 0.83``) placed outside the faces.

:func:`place_tags` is pure geometry: the largest faces choose first, each tag takes
the first free spot around its face (above, below, beside, then further out), never
on a face and never on another tag; when the full text finds no spot the tag
collapses to the id, and a tag with no spot at all is left out. Faces under
``min_face_px`` always get the id only. :func:`draw_faces` draws boxes and tags in
each face's colour (:func:`~liveaffect.runtime.style.id_color`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from liveaffect.runtime.style import TAG_COLOR, TEXT_COLOR, Style, id_color, put_text, text_size
from liveaffect.types import FaceResult

Box = tuple[int, int, int, int]
"""(x1, y1, x2, y2) in pixels, x2/y2 exclusive."""

MIN_FACE_PX = 40
"""Faces whose shorter side is below this (in frame pixels) get a tag with the id only."""


@dataclass(frozen=True)
class TagRequest:
    """One face asking for a tag.

    Attributes:
        face_box: the face's box (an obstacle for every tag).
        full: (width, height) of the full tag.
        compact: (width, height) of the id-only tag.
        small_face: the face is under ``MIN_FACE_PX``: only the compact tag is tried.
    """

    face_box: Box
    full: tuple[int, int]
    compact: tuple[int, int]
    small_face: bool = False


@dataclass(frozen=True)
class PlacedTag:
    """Where a tag went: its rectangle and whether it shows the id only."""

    rect: Box
    compact: bool


def _candidates(box: Box, w: int, h: int, gap: int, rings: int) -> np.ndarray:
    """Tag positions around ``box``, nearest first: (N, 4) xyxy."""
    x1, y1, x2, y2 = box
    spots = [
        (x1, y1 - gap - h),  # above, left-aligned
        (x1, y2 + gap),  # below
        (x2 + gap, y1),  # right
        (x1 - gap - w, y1),  # left
        (x2 - w, y1 - gap - h),  # above, right-aligned
        (x2 - w, y2 + gap),  # below, right-aligned
    ]
    for k in range(1, rings + 1):
        dy, dx = k * (h + gap), k * (w // 2 + gap)
        for sx in (0, -dx, dx):
            spots.append((x1 + sx, y1 - gap - h - dy))
            spots.append((x1 + sx, y2 + gap + dy))
        spots.append((x2 + gap, y1 + dy))
        spots.append((x1 - gap - w, y1 + dy))
        spots.append((x2 + gap + dx, y1))
        spots.append((x1 - gap - w - dx, y1))
    xy = np.asarray(spots, np.int64)
    return np.concatenate([xy, xy + np.array([w, h])], axis=1)


def _first_free(cands: np.ndarray, obstacles: np.ndarray, width: int, height: int) -> Box | None:
    inside = (cands[:, 0] >= 0) & (cands[:, 1] >= 0) & (cands[:, 2] <= width)
    inside &= cands[:, 3] <= height
    cands = cands[inside]
    if len(cands) == 0:
        return None
    if len(obstacles):
        a, b = cands[:, None, :], obstacles[None, :, :]
        overlap = (a[..., 0] < b[..., 2]) & (b[..., 0] < a[..., 2])
        overlap &= (a[..., 1] < b[..., 3]) & (b[..., 1] < a[..., 3])
        free = ~overlap.any(axis=1)
    else:
        free = np.ones(len(cands), bool)
    hits = np.flatnonzero(free)
    return tuple(int(v) for v in cands[hits[0]]) if len(hits) else None


def place_tags(
    requests: Sequence[TagRequest],
    frame_size: tuple[int, int],
    gap: int = 3,
    rings: int = 4,
    reserved: Sequence[Box] = (),
) -> list[PlacedTag | None]:
    """Place every tag outside all faces and apart from each other.

    Args:
        requests: one per face.
        frame_size: (width, height); tags stay inside.
        gap: pixels between a tag and its face.
        rings: how many steps further out to look when the spots next to the face are taken.
        reserved: more rectangles no tag may cover (e.g. the FPS box).

    Returns:
        One entry per request, in the same order: where the tag goes, or None when
        there is no free spot even for the id.
    """
    width, height = frame_size
    faces = np.asarray([r.face_box for r in requests], np.int64).reshape(-1, 4)
    areas = (faces[:, 2] - faces[:, 0]) * (faces[:, 3] - faces[:, 1])
    fixed = np.concatenate([faces, np.asarray(reserved, np.int64).reshape(-1, 4)])
    order = sorted(range(len(requests)), key=lambda i: (-int(areas[i]), i))
    taken: list[Box] = []
    placed: list[PlacedTag | None] = [None] * len(requests)
    for i in order:
        req = requests[i]
        obstacles = np.concatenate([fixed, np.asarray(taken, np.int64).reshape(-1, 4)])
        sizes = (
            [(req.compact, True)] if req.small_face else [(req.full, False), (req.compact, True)]
        )
        for (w, h), compact in sizes:
            rect = _first_free(
                _candidates(req.face_box, w, h, gap, rings), obstacles, width, height
            )
            if rect is not None:
                placed[i] = PlacedTag(rect, compact)
                taken.append(rect)
                break
    return placed


def clip_box(xyxy: Sequence[float], width: int, height: int) -> Box | None:
    """Clip a box to the frame; None when nothing of it is inside."""
    x1, y1, x2, y2 = (round(float(v)) for v in xyxy)
    x1, x2 = max(0, min(x1, width - 1)), max(0, min(x2, width - 1))
    y1, y2 = max(0, min(y1, height - 1)), max(0, min(y2, height - 1))
    if x2 <= x1 or y2 <= y1:
        return None
    return x1, y1, x2, y2


def tag_text(face: FaceResult, expressions: Sequence[str]) -> str:
    """``#3 Happiness 0.83``; ``#3`` when the expression head is not shown."""
    probs = face.prediction.expr_probs
    if probs is None:
        return f"#{face.track_id}"
    k = int(np.argmax(probs))
    return f"#{face.track_id} {expressions[k]} {float(probs[k]):.2f}"


def _tag_size(text: str, style: Style) -> tuple[int, int]:
    w, h, base = text_size(text, style.font)
    return w + 2 * style.pad, h + base + style.pad


def draw_faces(
    image: np.ndarray,
    faces: Sequence[FaceResult],
    style: Style,
    expressions: Sequence[str],
    scale: float = 1.0,
    tags: bool = True,
    reserved: Sequence[Box] = (),
) -> list[PlacedTag | None]:
    """Draw every face's box in its colour and (``tags``) its tag, in place.

    Args:
        image: the BGR canvas (the frame, possibly resized by ``scale``).
        faces: this frame's faces (boxes in source-frame pixels).
        style: sizes for this canvas.
        expressions: expression names in the model's order.
        scale: canvas pixels per source-frame pixel.
        tags: False draws the boxes only.
        reserved: rectangles the tags keep clear of (the FPS and timings boxes).

    Returns:
        The placed tags, one per face whose box is inside the canvas.
    """
    h, w = image.shape[:2]
    shown, requests, texts = [], [], []
    for face in faces:
        box = clip_box([v * scale for v in face.detection.xyxy], w, h)
        if box is None:
            continue
        shown.append((face, box))
        full, compact = tag_text(face, expressions), f"#{face.track_id}"
        small = min(face.detection.width, face.detection.height) < MIN_FACE_PX
        requests.append(TagRequest(box, _tag_size(full, style), _tag_size(compact, style), small))
        texts.append((full, compact))
    for face, box in shown:
        cv2.rectangle(image, box[:2], box[2:], id_color(face.track_id), style.thick + 1)
    if not tags:
        return []
    placed = place_tags(requests, (w, h), gap=style.thick + 2, reserved=reserved)
    for (face, box), spot, (full, compact) in zip(shown, placed, texts, strict=True):
        if spot is not None:
            _draw_tag(image, box, spot, compact if spot.compact else full, face.track_id, style)
    return placed


def _draw_tag(image, box: Box, spot: PlacedTag, text: str, track_id: int, style: Style) -> None:
    color = id_color(track_id)
    x1, y1, x2, y2 = spot.rect
    bx1, by1, bx2, by2 = box
    gap = style.thick + 2
    near_x = bx1 - gap - (x2 - x1) <= x1 <= bx2 + gap
    near_y = by1 - gap - (y2 - y1) <= y1 <= by2 + gap
    if not (near_x and near_y):  # moved away from its face: a leader line back to it
        tx, ty = (x1 + x2) // 2, (y1 + y2) // 2
        cx, cy = min(max(tx, bx1), bx2), min(max(ty, by1), by2)
        cv2.line(image, (tx, ty), (cx, cy), color, 1, cv2.LINE_AA)
    cv2.rectangle(image, (x1, y1), (x2 - 1, y2 - 1), TAG_COLOR, -1)
    cv2.rectangle(image, (x1, y1), (x2 - 1, y2 - 1), color, 1)
    put_text(image, text, (x1 + style.pad, y1 + style.pad // 2 + 1), style.font, TEXT_COLOR)
