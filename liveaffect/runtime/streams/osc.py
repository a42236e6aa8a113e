"""OSC messages per face per frame over UDP (``python-osc``).

Per frame, first ``/liveaffect/frame`` (frame number as int32, capture time in seconds on
LSL's clock as float64, face count as int32), then for every face ``<id>``:

====================================  =====================================================
``/liveaffect/face/<id>/box``         x1, y1, x2, y2 (pixels), detection score (5 floats)
``/liveaffect/face/<id>/expr``        the 8 expression probabilities, labels.EXPRESSIONS order
``/liveaffect/face/<id>/va``          valence, arousal in [-1, 1]
``/liveaffect/face/<id>/au``          the 12 AU probabilities, labels.AUS order
====================================  =====================================================

A head the model has not trained sends no message (no ``/au`` for the default model).
UDP needs no listener: messages to a port nobody reads are lost, as OSC expects.
"""

from __future__ import annotations

import logging
import socket

import numpy as np

from liveaffect.runtime.streams.base import StreamError, StreamSink
from liveaffect.runtime.streams.meta import StreamMeta
from liveaffect.runtime.streams.records import clipped_box, frame_size_of
from liveaffect.types import FrameResult

PREFIX = "/liveaffect"
log = logging.getLogger(__name__)


def frame_messages(result: FrameResult, meta: StreamMeta, frame_size=None):
    """The (address, args) pairs of one frame, in sending order (floats as Python floats)."""
    t = meta.capture_time_s(result.timestamp_ms)
    out: list[tuple[str, list]] = [(f"{PREFIX}/frame", [int(result.index), t, len(result.faces)])]
    for face in result.faces:
        base, pred = f"{PREFIX}/face/{int(face.track_id)}", face.prediction
        out.append((f"{base}/box", [*clipped_box(face, frame_size), float(face.detection.score)]))
        for suffix, values in (("expr", pred.expr_probs), ("va", pred.va), ("au", pred.au_probs)):
            if values is not None:
                out.append((f"{base}/{suffix}", np.asarray(values, np.float64).tolist()))
    return out


class OscSink(StreamSink):
    """Sends every frame's faces as OSC messages to ``host:port``.

    Args:
        meta: model and clock.
        host: receiver's host name or address.
        port: receiver's UDP port.

    Raises:
        StreamError: the host name does not resolve.
    """

    def __init__(self, meta: StreamMeta, host: str, port: int) -> None:
        from pythonosc.osc_message_builder import OscMessageBuilder
        from pythonosc.udp_client import UDPClient

        self.meta, self.host, self.port = meta, host, int(port)
        self._builder = OscMessageBuilder
        try:
            self._client = UDPClient(host, self.port)
        except (socket.gaierror, OSError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise StreamError(
                f"osc://{host}:{port}: cannot resolve host {host!r} ({reason})"
            ) from None
        self.messages = 0
        self.send_errors = 0

    def describe(self) -> str:
        return f"osc://{self.host}:{self.port}"

    def _message(self, address: str, args: list):
        builder = self._builder(address)
        kind = "d" if address.endswith("/frame") else "f"  # the frame time needs float64
        for value in args:
            builder.add_arg(value, "i" if isinstance(value, int) else kind)
        return builder.build()

    def write(self, frame_bgr: np.ndarray, result: FrameResult) -> None:
        """Send this frame's messages (a failed send is counted and logged once)."""
        if self.closed:
            return
        for address, args in frame_messages(result, self.meta, frame_size_of(frame_bgr)):
            try:
                self._client.send(self._message(address, args))
                self.messages += 1
            except OSError as exc:
                self.send_errors += 1
                if self.send_errors == 1:
                    log.warning(
                        "osc://%s:%s: sending failed (%s); counting further failures",
                        self.host,
                        self.port,
                        exc,
                    )

    def _close(self) -> None:
        if self.send_errors:
            log.warning(
                "osc://%s:%s: %d messages could not be sent", self.host, self.port, self.send_errors
            )
        self._client.close()
