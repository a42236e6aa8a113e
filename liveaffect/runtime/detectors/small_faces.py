"""Where BlazeFace looks for faces too small to be found in the whole frame.

BlazeFace full range sees a frame at 192 px, so it misses faces under about 7.5% of the
frame's longer side (45 px in a 640x480 webcam frame, 144 px in 1080p). A face is found
down to about 24 px when the model sees a window of at most 320 frame pixels around it
(measured on the shared clips: ``bench/README.md``, "Small faces"). Two kinds of window:

* **Tiles** (:func:`tile_grid`): squares covering the whole frame, in levels of 320, 640,
  1280... px while a level is smaller than the frame. Neighbouring tiles of a level
  overlap by 15% of their side, so a face between 7.5% and 15% of that side lies whole
  inside one tile; smaller faces are the previous level's, larger ones the next level's
  (the last level's next is the whole frame).
* **Follow windows** (:func:`follow_windows`): a square of three to six face heights around
  a small face found in the previous video frame, searched with the short-range model; a
  face moving a face width per frame stays inside it. The side is 64 or 128 px times a
  power of two, so the model's 128 px input is an exact halving (fast) of it, and a face
  that already lies well inside another face's window gets none of its own (crowds).

A face cut by a window's edge is half a face and gets a wrong box, so a detection that
touches an edge of its window that is not the frame's edge is dropped
(:func:`detections_in`): the overlap gives that face whole to a neighbouring tile. A tile
keeps only faces under a quarter of its side: larger ones are the whole frame's, and a
large face seen again in a tile of its own would move the merged box from frame to frame.
No library does this split for BlazeFace (MediaPipe's own graph runs one window), hence
the few lines here.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from liveaffect.types import Detection

SMALL_FACES = ("video", "still", "off")  # the detector's ``small_faces`` modes
TILE_SIDE = 320  # frame pixels: full range (192 px input) finds 24 px faces in such a tile
TILE_OVERLAP = 0.15  # of a tile's side: faces up to this size are whole in some tile
TILE_FACES_BELOW = 0.25  # of a tile's side: larger faces are left to the whole frame
FOLLOW_SIDE = 3.0  # a follow window's side is at least this many face heights...
FOLLOW_SIDES = (64, 128, 256, 512, 1024, 2048)  # ...and one of these (halvings of 128 px)
FOLLOW_BELOW = 0.15  # faces under this share of the frame's longer side are followed
EDGE_MARGIN = 1.0  # px: a box this close to a window's inner edge is a cut face
ROUND_FRAMES = 60  # a video searches all its tiles within about this many frames...
MOST_FRAMES_PER_TILE = 6  # ...but never fewer than one tile every this many frames

Region = tuple[int, int, int, int]  # x, y, width, height in frame pixels


def _starts(length: int, side: int, step: int) -> list[int]:
    """Start offsets of windows of ``side`` covering ``length``, ``step`` apart or less."""
    if side >= length:
        return [0]
    count = math.ceil((length - side) / step) + 1
    return [round(i * (length - side) / (count - 1)) for i in range(count)]


def tile_grid(width: int, height: int, side: int = TILE_SIDE) -> list[Region]:
    """The tiles that cover a ``width`` x ``height`` frame, levels interleaved.

    Levels have sides ``side``, ``2 * side``... while smaller than the frame's longer side;
    a frame no larger than ``side`` has no tiles (the whole frame is searched anyway). The
    levels' tiles are spread evenly through the list, so a video that searches one tile
    at a time, in order, visits every level throughout a round, not one level after another.
    """
    longer = max(width, height)
    placed: list[tuple[float, Region]] = []
    level = side
    while level < longer:
        tw, th = min(level, width), min(level, height)
        step = max(1, round(level * (1.0 - TILE_OVERLAP)))
        tiles = [(x, y, tw, th) for y in _starts(height, th, step)
                 for x in _starts(width, tw, step)]  # fmt: skip
        placed += [((i + 0.5) / len(tiles), t) for i, t in enumerate(tiles)]
        level *= 2
    return [t for _, t in sorted(placed, key=lambda p: p[0])]


def frames_per_tile(tiles: int) -> int:
    """A video searches one of its ``tiles`` every this many frames (1 or more).

    A round of all tiles takes about :data:`ROUND_FRAMES` frames (2 s at 30 FPS; 1080p,
    38 tiles: one every frame), and a frame with few tiles (640x480: 6) searches one only
    every :data:`MOST_FRAMES_PER_TILE` frames: a tile costs about as much as the whole
    frame's full-range search, and the live loop waits for it.
    """
    return max(1, min(MOST_FRAMES_PER_TILE, ROUND_FRAMES // max(1, tiles)))


def follow_window(det: Detection, width: int, height: int) -> Region | None:
    """The square searched for ``det`` in the next frame, kept inside the frame.

    Returns None for a face of at least :data:`FOLLOW_BELOW` of the frame's longer side
    (the whole-frame search finds it) or for a frame smaller than the window.
    """
    x1, y1, x2, y2 = det.xyxy
    face = max(x2 - x1, y2 - y1)
    if face >= FOLLOW_BELOW * max(width, height):
        return None
    side = next((s for s in FOLLOW_SIDES if s >= FOLLOW_SIDE * face), None)
    if side is None or side > min(width, height):
        return None
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    x = int(np.clip(round(cx - side / 2), 0, width - side))
    y = int(np.clip(round(cy - side / 2), 0, height - side))
    return x, y, side, side


def follow_windows(detections: list[Detection], width: int, height: int) -> list[Region]:
    """The follow windows for ``detections`` (best first): one per small face, except for a
    face that lies inside an earlier window with half a face of room on every side that is
    not the frame's edge, and is at least a sixth of that window (big enough to be found)."""
    windows: list[Region] = []
    for det in detections:
        region = follow_window(det, width, height)
        if region is not None and not any(_covers(w, det, width, height) for w in windows):
            windows.append(region)
    return windows


def _covers(window: Region, det: Detection, width: int, height: int) -> bool:
    x, y, w, h = window
    x1, y1, x2, y2 = det.xyxy
    face = max(x2 - x1, y2 - y1)
    room = face / 2
    inside = (
        (x1 - x >= room or x == 0)
        and (y1 - y >= room or y == 0)
        and (x + w - x2 >= room or x + w == width)
        and (y + h - y2 >= room or y + h == height)
    )
    return inside and face >= max(w, h) / 6


def detections_in(
    find: Callable[[np.ndarray], list[Detection]],
    bgr: np.ndarray,
    region: Region,
    below: float | None = None,
) -> list[Detection]:
    """Faces ``find`` sees in ``region`` of ``bgr``, in frame pixels, cut faces dropped.

    Args:
        below: keep only faces whose height is under this share of the region's longer side
            (None: all).
    """
    x, y, w, h = region
    fh, fw = bgr.shape[:2]
    inner = (x > 0, y > 0, x + w < fw, y + h < fh)  # left, top, right, bottom
    out = []
    for d in find(bgr[y : y + h, x : x + w]):
        bx1, by1, bx2, by2 = d.xyxy
        at_edge = (
            bx1 <= EDGE_MARGIN,
            by1 <= EDGE_MARGIN,
            bx2 >= w - EDGE_MARGIN,
            by2 >= h - EDGE_MARGIN,
        )
        if any(i and e for i, e in zip(inner, at_edge, strict=True)):
            continue
        if below is not None and by2 - by1 >= below * max(w, h):
            continue
        box = (bx1 + x, by1 + y, bx2 + x, by2 + y)
        keypoints = np.asarray(d.keypoints, np.float32) + np.float32([x, y])
        out.append(Detection(box, d.score, keypoints))
    return out
