"""OSC over UDP: every frame one OSC bundle holding the frame's messages, in order.

Each frame is one bundle (OSC 1.0, time tag "immediately"), so a receiver wakes once
per frame however many faces there are. It holds first ``/liveaffect/frame`` (frame
number as int32, capture time in seconds on LSL's clock as float64, face count as
int32), then for every face ``<id>``:

====================================  =====================================================
``/liveaffect/face/<id>/box``         x1, y1, x2, y2 (pixels), detection score (5 floats)
``/liveaffect/face/<id>/expr``        the 8 expression probabilities, the card's class order
``/liveaffect/face/<id>/va``          valence, arousal in [-1, 1]
``/liveaffect/face/<id>/au``          the 12 AU probabilities, the card's AU order
====================================  =====================================================

A head the model has not trained sends no message.
A frame whose bundle would pass :data:`MAX_DATAGRAM` bytes (many faces) is split into
several bundles between faces. UDP needs no listener: bundles to a port nobody reads are
lost, as OSC expects. The packets are encoded here with ``struct`` (the OSC 1.0 layout);
the tests decode them with ``python-osc``.
"""

from __future__ import annotations

import logging
import socket
import struct

import numpy as np

from liveaffect.runtime.streams.base import StreamError, StreamSink
from liveaffect.runtime.streams.meta import StreamMeta
from liveaffect.runtime.streams.records import FramePacket, clipped_box
from liveaffect.runtime.streams.targets import host_port
from liveaffect.types import FaceResult

PREFIX = "/liveaffect"
MAX_DATAGRAM = 8192
"""Bytes per bundle at most (python-osc's and many receivers' read size)."""
BUNDLE_HEAD = b"#bundle\0" + struct.pack(">Q", 1)  # time tag 1: "immediately"
log = logging.getLogger(__name__)


def osc_string(text: str) -> bytes:
    """An OSC string: UTF-8, NUL-terminated, padded to a multiple of 4 bytes."""
    data = text.encode() + b"\0"
    return data + b"\0" * (-len(data) % 4)


def osc_message(address: str, tags: str, payload: bytes) -> bytes:
    """One OSC message; ``payload`` is the arguments, big-endian, as ``tags`` says."""
    return osc_string(address) + osc_string("," + tags) + payload


def osc_bundle(messages: list[bytes]) -> bytes:
    """An OSC bundle, time tag "immediately", holding ``messages`` in order."""
    return BUNDLE_HEAD + b"".join(struct.pack(">i", len(m)) + m for m in messages)


def _floats(address: str, values) -> bytes:
    data = np.asarray(values, ">f4").ravel()
    return osc_message(address, "f" * data.size, data.tobytes())


def face_messages(face: FaceResult, frame_size=None) -> list[bytes]:
    """One face's messages: box, then expr, va, au for the heads the model has."""
    base, pred = f"{PREFIX}/face/{int(face.track_id)}", face.prediction
    out = [_floats(f"{base}/box", [*clipped_box(face, frame_size), face.detection.score])]
    for suffix, values in (("expr", pred.expr_probs), ("va", pred.va), ("au", pred.au_probs)):
        if values is not None:
            out.append(_floats(f"{base}/{suffix}", values))
    return out


def frame_bundles(packet: FramePacket, limit: int = MAX_DATAGRAM) -> list[bytes]:
    """The frame's bundles (one unless it passes ``limit`` bytes; faces are not split)."""
    result = packet.result
    head = struct.pack(">idi", int(result.index), packet.t, len(result.faces))
    groups = [[osc_message(f"{PREFIX}/frame", "idi", head)]]
    groups += [face_messages(face, packet.frame_size) for face in result.faces]
    bundles: list[bytes] = []
    current: list[bytes] = []
    size = len(BUNDLE_HEAD)
    for group in groups:
        group_size = sum(4 + len(m) for m in group)
        if current and size + group_size > limit:
            bundles.append(osc_bundle(current))
            current, size = [], len(BUNDLE_HEAD)
        current += group
        size += group_size
    bundles.append(osc_bundle(current))
    return bundles


class OscSink(StreamSink):
    """Sends every frame's faces as an OSC bundle to ``host:port``.

    Args:
        meta: model and clock.
        host: receiver's host name or address.
        port: receiver's UDP port.

    Raises:
        StreamError: the host name does not resolve.
    """

    def __init__(self, meta: StreamMeta, host: str, port: int) -> None:
        self.meta, self.host, self.port = meta, host, int(port)
        try:
            family, kind, proto, _, address = socket.getaddrinfo(
                host, self.port, type=socket.SOCK_DGRAM
            )[0]
        except (socket.gaierror, OSError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise StreamError(
                f"osc://{host_port(host, port)}: cannot resolve host {host!r} ({reason})"
            ) from None
        self._address = address
        self._socket = socket.socket(family, kind, proto)
        self.bundles = 0
        self.send_errors = 0

    def describe(self) -> str:
        return f"osc://{host_port(self.host, self.port)}"

    def send(self, packet: FramePacket) -> None:
        """Send this frame's bundle (a failed send is counted and logged once)."""
        if self.closed:
            return
        for bundle in frame_bundles(packet):
            try:
                self._socket.sendto(bundle, self._address)
                self.bundles += 1
            except OSError as exc:
                self.send_errors += 1
                if self.send_errors == 1:
                    log.warning(
                        "%s: sending failed (%s); counting further failures",
                        self.describe(),
                        exc,
                    )

    def _close(self) -> None:
        if self.send_errors:
            log.warning("%s: %d bundles could not be sent", self.describe(), self.send_errors)
        self._socket.close()
