"""Soft expression targets from a teacher bundle (offline knowledge distillation).

With ``train.distill_from``, the teacher scores every training face once, as decoded
(no augmentation, no degradation; the face and its mirror averaged), before the first
epoch. The expression loss then trains on ``(1 - train.distill_weight)`` of the hard
label and ``train.distill_weight`` of the teacher's probabilities
(:class:`liveaffect.model.losses.MaskedExpressionLoss`). The student sees the augmented
and degraded face but is asked for what the teacher said about the clean one.

A face whose label is a class the teacher never learned (its card's ``classes_seen``,
e.g. "Other" for a teacher trained on FER2013 alone), or that has no expression label,
keeps the hard label only: its row is filled with -1.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from liveaffect.data.records import Record
from liveaffect.labels import EXPRESSIONS, NUM_EXPRESSIONS
from liveaffect.preprocess import PreprocessSpec
from liveaffect.training.inputs import TrainingError
from liveaffect.tta import TTA

NO_TEACHER = -1.0


def teacher_targets(
    source: str, images: np.ndarray | None, records: Sequence[Record], spec: PreprocessSpec
) -> np.ndarray:
    """The teacher's expression probabilities for each face, ``(N, 8)`` float32.

    Args:
        source: the teacher bundle (folder or ``.keras``).
        images: the decoded training faces, uint8, in ``records``' order.
        records: their records (labels decide which rows get a target).
        spec: the student's preprocessing; the teacher must take the same faces.

    Raises:
        TrainingError: the teacher cannot be loaded, takes other faces, has no trained
            expression head, or the faces are not in memory.
    """
    from liveaffect.bundle import BundleError, load_bundle
    from liveaffect.training.monitor import predict_arrays

    if images is None:
        raise TrainingError("train.distill_from needs the faces in memory (data.cache: memory)")
    try:
        teacher = load_bundle(source)
    except BundleError as exc:
        raise TrainingError(f"train.distill_from: {exc}") from exc
    tspec = teacher.card.preprocess
    if tuple(tspec.input_shape) != tuple(spec.input_shape) or tspec.color != spec.color:
        raise TrainingError(
            f"train.distill_from: {source} takes {tspec.input_shape} {tspec.color} faces, "
            f"this run {spec.input_shape} {spec.color}"
        )
    head = teacher.card.heads.get("expr")
    if head is None or not head.trained:
        raise TrainingError(f"train.distill_from: {source} has no trained expression head")
    known = set(head.classes_seen or EXPRESSIONS)
    probs = predict_arrays(teacher.model, images, tspec, TTA(flip=True))["expr"]
    out = np.full((len(records), NUM_EXPRESSIONS), NO_TEACHER, np.float32)
    for i, r in enumerate(records):
        if r.has_expr and EXPRESSIONS[r.expr] in known:
            out[i] = probs[i]
    return out
