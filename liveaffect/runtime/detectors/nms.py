"""MediaPipe's weighted non-maximum suppression, for BlazeFace's boxes and for merging the
boxes of several BlazeFace passes (whole frame, tiles, followed faces) into one per face.

MediaPipe's ``NonMaxSuppressionCalculator`` (WEIGHTED) blends the boxes of a cluster by
score instead of keeping the best one; OpenCV's ``dnn.NMSBoxes`` and torchvision only keep,
so these few lines are written here.
"""

from __future__ import annotations

import numpy as np

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


def merge_detections(detections: list[Detection]) -> list[Detection]:
    """One detection per face from several models' detections (weighted NMS), best first."""
    if len(detections) < 2:
        return list(detections)
    boxes = np.array([d.xyxy for d in detections], np.float64)
    kps = np.stack([np.asarray(d.keypoints, np.float64) for d in detections])
    scores = np.array([d.score for d in detections], np.float64)
    merged = weighted_nms(boxes, kps, scores)
    return [
        Detection(tuple(float(v) for v in box), score, kp.astype(np.float32))
        for box, kp, score in merged
    ]
