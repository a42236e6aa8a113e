"""JSON lines: the WebSocket's JSON object, one line per frame, flushed per line.

``jsonl:PATH`` writes a file: it is opened (created if missing) with the other outlets,
before the source, the model and the window, but an existing file is emptied only when the
first frame is written, so a start that fails (a camera that does not open, a corrupt
model) leaves it as it was. ``jsonl:-`` writes standard output, so another program can
read it through a pipe. A reader that goes away (a closed pipe) ends the outlet quietly
instead of the run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path

from liveaffect.runtime.streams.base import StreamError, StreamSink
from liveaffect.runtime.streams.meta import StreamMeta
from liveaffect.runtime.streams.records import FramePacket

log = logging.getLogger(__name__)


class JsonlSink(StreamSink):
    """Writes one JSON object per frame and flushes it.

    Args:
        meta: model, labels and clock.
        path: the file, or None for standard output.

    Raises:
        StreamError: the file cannot be created.
    """

    def __init__(self, meta: StreamMeta, path: str | os.PathLike | None = None) -> None:
        self.meta = meta
        self.path = Path(path) if path is not None else None
        if self.path is None:
            self._file, self._owned = sys.stdout, False
        else:
            try:  # appending: nothing is cut until the first frame (see the module docstring)
                self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
            except OSError as exc:
                raise StreamError(f"jsonl:{self.path}: cannot write ({exc.strerror})") from None
            self._owned = True
        self._emptied = not self._owned
        self.lines = 0

    def describe(self) -> str:
        return f"jsonl:{self.path if self.path is not None else '- (stdout)'}"

    def send(self, packet: FramePacket) -> None:
        """Write this frame's line and flush it."""
        if self.closed:
            return
        if not self._emptied:
            self._emptied = True
            with contextlib.suppress(OSError):  # a pipe or a device cannot be truncated
                self._file.truncate(0)
        try:
            self._file.write(packet.json_text + "\n")
            self._file.flush()
        except BrokenPipeError:
            log.warning("%s: the reader went away; no more lines are written", self.describe())
            self._abandon_stdout()
            self.closed = True
            return
        self.lines += 1

    def _abandon_stdout(self) -> None:
        # Python flushes stdout again at exit; point it at /dev/null so that does not fail.
        if not self._owned:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)

    def _close(self) -> None:
        if self._owned:
            self._file.close()
        else:
            with contextlib.suppress(BrokenPipeError, ValueError):
                self._file.flush()
