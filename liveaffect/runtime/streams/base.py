"""What every stream outlet shares: the sink protocol's flags, ``with`` support, the error."""

from __future__ import annotations

import numpy as np

from liveaffect.runtime.streams.records import FramePacket, frame_size_of
from liveaffect.types import FrameResult, Sink


class StreamError(Exception):
    """An outlet cannot be opened (port in use, unknown host, unwritable file ...).

    The message is one sentence for the user.
    """


class StreamSink(Sink):
    """Base of the outlets: a :class:`liveaffect.types.Sink` that never draws or stops the run.

    Subclasses implement ``send(packet)`` (one :class:`FramePacket`; the streaming process,
    :mod:`.process`, shares one packet between all outlets) and ``_close()``; :meth:`close`
    is safe to call twice.
    """

    closed = False
    meta = None

    def write(self, frame_bgr: np.ndarray, result: FrameResult) -> None:
        """Send this frame (boxes clipped to ``frame_bgr``'s size)."""
        self.send(FramePacket(result, self.meta, frame_size_of(frame_bgr)))

    def send(self, packet: FramePacket) -> None:
        """Send one frame; does nothing once closed."""
        raise NotImplementedError

    def describe(self) -> str:
        """Where the outlet sends to, for the start-up line."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the socket, server or file (safe twice)."""
        if self.closed:
            return
        self.closed = True
        self._close()

    def _close(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
