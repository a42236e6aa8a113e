"""What every stream outlet shares: the sink protocol's flags, ``with`` support, the error."""

from __future__ import annotations

from liveaffect.types import Sink


class StreamError(Exception):
    """An outlet cannot be opened (port in use, unknown host, unwritable file ...).

    The message is one sentence for the user.
    """


class StreamSink(Sink):
    """Base of the outlets: a :class:`liveaffect.types.Sink` that never draws or stops the run.

    Subclasses implement ``write(frame_bgr, result)`` and ``_close()``; :meth:`close` is
    safe to call twice.
    """

    closed = False

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
