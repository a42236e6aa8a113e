"""Face tracking: give each face a stable id while it stays in view.

Detections of a new frame are assigned to the known tracks with scipy's Hungarian solver
(:func:`scipy.optimize.linear_sum_assignment`) on box overlap (IoU). A face that the
detector misses for up to ``max_lost`` frames keeps its id when it comes back near where
it was: lost tracks also match by centre distance relative to their box size, within a
gate that widens the longer the track has been missed (where a face should be grows less
certain with every frame it is extrapolated). Each track keeps a constant-velocity
estimate of its box (a running mean of how far the box moved per frame), and matching
compares detections with where each track is *predicted* to be, so a face that crosses
the frame fast, or is missed for a frame or two while it moves, keeps its id, and with
where it was last seen (whichever is closer), so a face that barely moved keeps its id
when noise in the velocity (a head bobbing as its owner walks, box jitter) extrapolated
over missed frames points elsewhere. Ids are never reused, so per-face state (smoothing)
can never mix people. :meth:`IouTracker.reset` ends every track (the live loop calls it
at a shot cut, see :mod:`liveaffect.runtime.shotcut`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from liveaffect.types import Detection, FaceResult


@dataclass(frozen=True)
class TrackerOptions:
    """Tuning of :class:`IouTracker`.

    Attributes:
        iou_threshold: minimum IoU for a detection to continue a track.
        max_lost: frames a track survives without a detection before its id retires.
        max_center_distance: a detection whose centre lies within this many box sizes
            (the larger side of the track's last box) of a track's predicted or last centre
            may also continue it when the boxes barely overlap (fast motion, a missed frame);
            for a track already missed for some frames the gate is wider (``lost_gate_growth``).
        velocity_weight: how much each new step counts in a track's velocity estimate
            (an exponential moving average of the per-frame box motion); 0 turns motion
            prediction off (a track is expected where it was last seen).
        lost_gate_growth: how fast the centre-distance gate widens while a track is lost:
            a track missed for the last ``n`` frames accepts a detection within
            ``max_center_distance * min(1 + lost_gate_growth * n, 2)`` box sizes (0.6 for a
            track seen in the previous frame, 0.99 after 13 missed frames at the defaults),
            since a constant-velocity prediction drifts further from the face the longer it
            runs unchecked. 0 keeps the gate fixed. The default 0.05 gives one id instead of
            two to a woman in the shared crowd clip missed for 13 frames while walking fast
            who came back 0.68 box sizes from her predicted place (see README, tracking).
    """

    iou_threshold: float = 0.3
    max_lost: int = 15
    max_center_distance: float = 0.6
    velocity_weight: float = 0.5
    lost_gate_growth: float = 0.05

    def __post_init__(self) -> None:
        if not 0.0 < self.iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must be in (0, 1], got {self.iou_threshold}")
        if self.max_lost < 0:
            raise ValueError(f"max_lost must be >= 0, got {self.max_lost}")
        if self.max_center_distance < 0:
            raise ValueError(f"max_center_distance must be >= 0, got {self.max_center_distance}")
        if not 0.0 <= self.velocity_weight <= 1.0:
            raise ValueError(f"velocity_weight must be in [0, 1], got {self.velocity_weight}")
        if self.lost_gate_growth < 0:
            raise ValueError(f"lost_gate_growth must be >= 0, got {self.lost_gate_growth}")


@dataclass
class _TrackState:
    track_id: int
    detection: Detection
    lost: int = 0
    velocity: np.ndarray | None = None  # xyxy pixels per frame; None until seen twice

    def predicted_box(self) -> np.ndarray:
        """Where the box should be now: last box + velocity x frames since it was seen."""
        box = np.asarray(self.detection.xyxy, np.float64)
        if self.velocity is None:
            return box
        return box + self.velocity * (self.lost + 1)

    def observe(self, det: Detection, weight: float) -> None:
        """Continue the track with ``det``, updating the velocity estimate."""
        step = (np.asarray(det.xyxy, np.float64) - self.detection.xyxy) / (self.lost + 1)
        if self.velocity is None:
            self.velocity = step * (weight > 0)
        else:
            self.velocity = (1.0 - weight) * self.velocity + weight * step
        self.detection, self.lost = det, 0


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of two sets of ``xyxy`` boxes, shape (len(a), len(b))."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def box_size(boxes: np.ndarray) -> np.ndarray:
    """The larger side of each ``xyxy`` box, at least 1 pixel."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.maximum(np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]), 1.0)


def center_distance_matrix(
    tracks: np.ndarray, dets: np.ndarray, size: np.ndarray | None = None
) -> np.ndarray:
    """Centre distance of every (track, detection) pair in units of the track's box size.

    ``size``: one length per track to measure in (default: :func:`box_size` of ``tracks``).
    """
    t = np.asarray(tracks, np.float64).reshape(-1, 4)
    d = np.asarray(dets, np.float64).reshape(-1, 4)
    tc = (t[:, :2] + t[:, 2:]) / 2.0
    dc = (d[:, :2] + d[:, 2:]) / 2.0
    size = box_size(t) if size is None else np.maximum(np.asarray(size, np.float64), 1.0)
    dist = np.linalg.norm(tc[:, None, :] - dc[None, :, :], axis=-1)
    return dist / size[:, None]


MAX_GATE_GROWTH = 2.0
"""The centre-distance gate of a lost track widens to at most this many times
``max_center_distance`` (reached only with ``max_lost`` of 20 or more at the default growth)."""


def _assign(cost: np.ndarray, valid: np.ndarray) -> list[tuple[int, int]]:
    """Minimum-cost assignment restricted to ``valid`` pairs."""
    if cost.size == 0 or not valid.any():
        return []
    big = cost[valid].max() + 1e6
    rows, cols = linear_sum_assignment(np.where(valid, cost, big))
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if valid[r, c]]


class IouTracker:
    """Assigns stable ids to face detections frame after frame.

    Example:
        >>> tracker = IouTracker()
        >>> tracks = tracker.update(detector.detect(frame_bgr))  # doctest: +SKIP
    """

    def __init__(self, options: TrackerOptions | None = None) -> None:
        self.options = options or TrackerOptions()
        self._tracks: list[_TrackState] = []
        self._next_id = 1

    @property
    def track_ids(self) -> set[int]:
        """Ids still alive: seen this frame or lost for at most ``max_lost`` frames."""
        return {t.track_id for t in self._tracks}

    @property
    def ids_issued(self) -> int:
        """How many distinct ids this tracker has handed out."""
        return self._next_id - 1

    def reset(self) -> None:
        """Forget every track (ids keep counting up; they are never reused)."""
        self._tracks = []

    def update(self, detections: Sequence[Detection]) -> list[FaceResult]:
        """Match this frame's detections to tracks.

        Args:
            detections: the faces found in the current frame.

        Returns:
            One :class:`FaceResult` (id and box, no prediction yet) per detection, in the
            order of ``detections``.
        """
        opts = self.options
        dets = list(detections)
        det_boxes = np.array([d.xyxy for d in dets], np.float64).reshape(-1, 4)
        trk_boxes = np.array([t.predicted_box() for t in self._tracks], np.float64).reshape(-1, 4)
        last_boxes = np.array([t.detection.xyxy for t in self._tracks], np.float64).reshape(-1, 4)
        # gate sizes from the boxes last seen: a predicted box carries the velocity's size
        # change too, and a few frames of detector jitter can shrink it to nothing
        trk_sizes = box_size(last_boxes)
        matches: dict[int, int] = {}  # detection index -> track index

        # Each track is compared with where it is predicted to be and with where it was last
        # seen, whichever is closer: the velocity (a few frames of a head bobbing as its
        # owner walks, and of box jitter) extrapolated over missed frames can point away from
        # a face that barely moved, and the last box alone loses a fast walker.
        # 1) overlap with every live track's box (recently lost ones included).
        iou = np.maximum(iou_matrix(trk_boxes, det_boxes), iou_matrix(last_boxes, det_boxes))
        for ti, di in _assign(-iou, iou >= opts.iou_threshold):
            matches[di] = ti

        # 2) what is left: nearby centres, for faces that moved fast or were missed.
        free_t = [i for i in range(len(self._tracks)) if i not in matches.values()]
        free_d = [i for i in range(len(dets)) if i not in matches]
        if free_t and free_d and opts.max_center_distance > 0:
            sizes = trk_sizes[free_t]
            dist = np.minimum(
                center_distance_matrix(trk_boxes[free_t], det_boxes[free_d], sizes),
                center_distance_matrix(last_boxes[free_t], det_boxes[free_d], sizes),
            )
            # a track missed for n frames: the gate widens with n (the prediction drifts)
            lost = np.array([self._tracks[i].lost for i in free_t], np.float64)
            growth = np.minimum(1.0 + opts.lost_gate_growth * lost, MAX_GATE_GROWTH)
            gate = opts.max_center_distance * growth
            for r, c in _assign(dist, dist <= gate[:, None]):
                matches[free_d[c]] = free_t[r]

        out: list[FaceResult] = []
        kept: list[_TrackState] = []
        for di, det in enumerate(dets):
            if di in matches:
                state = self._tracks[matches[di]]
                state.observe(det, opts.velocity_weight)
            else:
                state = _TrackState(track_id=self._next_id, detection=det)
                self._next_id += 1
            kept.append(state)
            out.append(FaceResult(track_id=state.track_id, detection=det))
        for ti, state in enumerate(self._tracks):
            if ti in matches.values():
                continue
            state.lost += 1
            if state.lost <= opts.max_lost:
                kept.append(state)
        self._tracks = kept
        return out
