"""MediaPipe's weighted non-maximum suppression, for BlazeFace's boxes and for merging the
boxes of several BlazeFace passes (whole frame, tiles, followed faces) into one per face.

MediaPipe's ``NonMaxSuppressionCalculator`` (WEIGHTED) blends the boxes of a cluster by
score instead of keeping the best one; OpenCV's ``dnn.NMSBoxes`` and torchvision only keep,
so these few lines are written here.

Merging several passes adds one rule (:func:`same_face`): two boxes whose centres each lie
inside the other box are one face even when their IoU is at most :data:`NMS_IOU`. On small
faces (about 90-120 px in the 1080p crowd clip, under full range's 7.5% of the frame) the
whole-frame full-range box sits 0.3-0.5 of a face higher or to the side of the short-range
box that a follow window finds for the same face (IoU 0.23-0.30), and both were kept, each
tracked under an id of its own (``bench/README.md``, "One face, one box"). Two different
visible faces cannot pass that rule: each centre (eyes and nose) would lie inside the other
face, hidden by it.
"""

from __future__ import annotations

import numpy as np

from liveaffect.runtime.tracker import iou_matrix
from liveaffect.types import Detection

NMS_IOU = 0.3


def weighted_nms(
    boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, iou_threshold: float = NMS_IOU
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's weighted NMS: each cluster of overlapping boxes becomes one score-weighted box.

    Args:
        boxes: (N, 4) xyxy.
        keypoints: (N, K, 2).
        scores: (N,).
        iou_threshold: boxes overlapping the cluster's best box by more than this are merged.

    Returns:
        One (box (4,), keypoints (K, 2), best score) per cluster, best first.
    """
    order = np.argsort(-scores, kind="stable")
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(
        boxes[:, 3] - boxes[:, 1], 0, None
    )
    remaining = np.arange(len(scores))
    results = []
    while remaining.size:
        best = remaining[0]
        rest = boxes[remaining]
        iw = np.minimum(rest[:, 2], boxes[best, 2]) - np.maximum(rest[:, 0], boxes[best, 0])
        ih = np.minimum(rest[:, 3], boxes[best, 3]) - np.maximum(rest[:, 1], boxes[best, 1])
        inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
        union = areas[remaining] + areas[best] - inter
        iou = np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
        merge = iou > iou_threshold
        merge[0] = True
        members = remaining[merge]
        w = scores[members]
        w_sum = w.sum()
        box = (boxes[members] * w[:, None]).sum(0) / w_sum
        kps = (keypoints[members] * w[:, None, None]).sum(0) / w_sum
        results.append((box, kps, float(scores[best])))
        remaining = remaining[~merge]
    return results


def same_face(boxes: np.ndarray, others: np.ndarray) -> np.ndarray:
    """(N, M) bools: box ``i`` of ``boxes`` and box ``j`` of ``others`` (xyxy) are one face:
    their IoU is above :data:`NMS_IOU`, or each one's centre lies inside the other."""
    a = np.asarray(boxes, np.float64).reshape(-1, 4)[:, None, :]
    b = np.asarray(others, np.float64).reshape(-1, 4)[None, :, :]
    iou = iou_matrix(boxes, others)
    return (iou > NMS_IOU) | (_centre_inside(a, b) & _centre_inside(b, a))


def _centre_inside(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    cx, cy = (a[..., 0] + a[..., 2]) / 2, (a[..., 1] + a[..., 3]) / 2
    return (b[..., 0] <= cx) & (cx <= b[..., 2]) & (b[..., 1] <= cy) & (cy <= b[..., 3])


def merge_detections(detections: list[Detection]) -> list[Detection]:
    """One detection per face from several passes' detections, best first: weighted NMS,
    then a box that is the same face as a better one (:func:`same_face`) is dropped."""
    if len(detections) < 2:
        return list(detections)
    boxes = np.array([d.xyxy for d in detections], np.float64)
    kps = np.stack([np.asarray(d.keypoints, np.float64) for d in detections])
    scores = np.array([d.score for d in detections], np.float64)
    kept: list[tuple[np.ndarray, np.ndarray, float]] = []
    for box, kp, score in weighted_nms(boxes, kps, scores):
        if not kept or not same_face(box, np.array([k[0] for k in kept])).any():
            kept.append((box, kp, score))
    return [
        Detection(tuple(float(v) for v in box), score, kp.astype(np.float32))
        for box, kp, score in kept
    ]
