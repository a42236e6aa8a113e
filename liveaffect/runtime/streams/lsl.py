"""A Lab Streaming Layer outlet: every frame one sample, a fixed number of face slots.

Stream type ``Affect``, name ``liveaffect`` unless given, irregular rate (one sample per
processed frame), ``float32`` channels. Each slot has the channels of :func:`slot_fields`
(with the model card's label names), named
``face1_face_id``, ``face1_x1`` ... ``face1_AU26``, then ``face2_...``. A face keeps its
slot while it stays in view; a new face takes the lowest free slot; faces beyond the
slots are left out. Empty slots and heads the model has not trained are NaN. The sample's
timestamp is the frame's capture time on LSL's clock. The XML description holds every
channel's label, unit and type, the model card's name and version, the label order and
the number of slots, as LabRecorder and XDF readers expect.
"""

from __future__ import annotations

import math

import numpy as np

import liveaffect
from liveaffect.runtime.streams.base import StreamError, StreamSink
from liveaffect.runtime.streams.meta import StreamMeta, import_pylsl
from liveaffect.runtime.streams.records import FramePacket
from liveaffect.types import FrameResult

STREAM_TYPE = "Affect"
BOX_FIELDS = ("face_id", "x1", "y1", "x2", "y2", "det_score")


def slot_fields(meta: StreamMeta) -> tuple[str, ...]:
    """Channels of one face slot, in order: box, the card's expressions, valence/arousal,
    the card's AUs (28 for the 8 expressions and 12 AUs of the project's models)."""
    return (
        *BOX_FIELDS,
        *(f"p_{name}" for name in meta.expressions),
        "valence",
        "arousal",
        *meta.aus,
    )


SLOT_FIELDS: tuple[str, ...] = slot_fields(StreamMeta())
"""The slot's channels for the project's label set (:data:`liveaffect.labels.EXPRESSIONS`,
:data:`~liveaffect.labels.AU_COLUMNS`)."""


def _field_unit_type(name: str) -> tuple[str, str]:
    if name == "face_id":
        return "id", "FaceID"
    if name in ("x1", "y1", "x2", "y2"):
        return "pixels", "BoundingBox"
    if name == "det_score":
        return "probability", "DetectionScore"
    if name.startswith("p_"):
        return "probability", "Expression"
    if name in ("valence", "arousal"):
        return "normalized (-1..1)", name.capitalize()
    return "probability", "ActionUnit"


class SlotMap:
    """Keeps each face id in the same slot while it is in view."""

    def __init__(self, slots: int) -> None:
        self.slots = int(slots)
        self._slot_of: dict[int, int] = {}

    def assign(self, ids) -> dict[int, int]:
        """Slots for this frame's ``ids`` (those that fit); frees the slots of gone faces."""
        ids = list(ids)
        self._slot_of = {i: s for i, s in self._slot_of.items() if i in ids}
        free = [s for s in range(self.slots) if s not in self._slot_of.values()]
        for face_id in ids:
            if face_id not in self._slot_of and free:
                self._slot_of[face_id] = free.pop(0)
        return dict(self._slot_of)


def sample_row(
    result: FrameResult, slots: dict[int, int], meta: StreamMeta, frame_size
) -> np.ndarray:
    """One LSL sample: ``meta.faces * len(slot_fields(meta))`` float32 values, NaN where
    empty."""
    row = np.full((meta.faces, len(slot_fields(meta))), np.nan, np.float32)
    n_expr = len(meta.expressions)
    for face in result.faces:
        slot = slots.get(face.track_id)
        if slot is None:
            continue
        box = np.asarray(face.detection.xyxy, np.float64)
        if frame_size is not None:
            box = np.clip(box, 0, [frame_size[0], frame_size[1]] * 2)
        pred, out = face.prediction, row[slot]
        out[0], out[1:5], out[5] = face.track_id, box, face.detection.score
        if pred.expr_probs is not None:
            out[6 : 6 + n_expr] = pred.expr_probs
        if pred.va is not None:
            out[6 + n_expr : 8 + n_expr] = pred.va
        if pred.au_probs is not None:
            out[8 + n_expr :] = pred.au_probs
    return row.ravel()


def stream_info(name: str, meta: StreamMeta):
    """The ``pylsl.StreamInfo`` with the full XML description."""
    pylsl = import_pylsl()

    fields = slot_fields(meta)
    n = meta.faces * len(fields)
    source_id = f"liveaffect:{name}:{meta.model_name}:{meta.faces}"
    info = pylsl.StreamInfo(name, STREAM_TYPE, n, pylsl.IRREGULAR_RATE, "float32", source_id)
    desc = info.desc()
    channels = desc.append_child("channels")
    for s in range(meta.faces):
        for field in fields:
            unit, kind = _field_unit_type(field)
            ch = channels.append_child("channel")
            ch.append_child_value("label", f"face{s + 1}_{field}")
            ch.append_child_value("unit", unit)
            ch.append_child_value("type", kind)
            ch.append_child_value("slot", str(s + 1))
    model = desc.append_child("model")
    model.append_child_value("name", meta.model_name)
    model.append_child_value("version", meta.model_version)
    desc.append_child_value("faces", str(meta.faces))
    desc.append_child_value("channels_per_face", str(len(fields)))
    desc.append_child_value("expressions", ",".join(meta.expressions))
    desc.append_child_value("aus", ",".join(meta.aus))
    desc.append_child_value("weak_aus", ",".join(meta.weak_aus))  # F1 < 0.5 on new faces
    desc.append_child_value("timestamps", "frame capture time (local_clock at capture)")
    acq = desc.append_child("acquisition")
    acq.append_child_value("manufacturer", "liveaffect")
    acq.append_child_value("software_version", liveaffect.__version__)
    if meta.source:
        acq.append_child_value("source", meta.source)
    return info


class LslSink(StreamSink):
    """Pushes one sample per frame to an LSL outlet.

    Args:
        meta: model, slots and clock.
        name: the stream's name.

    Raises:
        StreamError: liblsl cannot create the outlet.
    """

    def __init__(self, meta: StreamMeta, name: str = "liveaffect") -> None:
        pylsl = import_pylsl()

        self.meta, self.name = meta, name
        self._slots = SlotMap(meta.faces)
        try:
            self._outlet = pylsl.StreamOutlet(stream_info(name, meta))
        except Exception as exc:  # liblsl raises RuntimeError on a broken network setup
            raise StreamError(f"cannot create the LSL outlet {name!r}: {exc}") from None
        self.samples = 0

    def describe(self) -> str:
        return f"lsl {self.name!r} (type {STREAM_TYPE}, {self.meta.faces} faces)"

    def send(self, packet: FramePacket) -> None:
        """Push this frame's sample, stamped with its capture time."""
        if self.closed:
            return
        result = packet.result
        slots = self._slots.assign(f.track_id for f in result.faces)
        row = sample_row(result, slots, self.meta, packet.frame_size)
        stamp = packet.t if math.isfinite(packet.t) else 0.0
        # A one-sample chunk hands liblsl the array's buffer (push_sample copies every
        # value into a ctypes array first); the stamp is that sample's.
        self._outlet.push_chunk(row.reshape(1, -1), stamp)
        self.samples += 1

    def _close(self) -> None:
        self._outlet = None  # pylsl destroys the outlet when the last reference goes
