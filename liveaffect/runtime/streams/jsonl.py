"""JSON lines: the WebSocket's JSON object, one line per frame, flushed per line.

``jsonl:PATH`` writes a file: it is opened (created if missing) with the other outlets,
before the source, the model and the window, but an existing file is emptied only when the
first frame is written, so a start that fails (a camera that does not open, a corrupt
model) leaves it as it was. ``jsonl:-`` writes standard output, so another program can
read it through a pipe. A reader that goes away (a closed pipe) ends the outlet quietly
instead of the run. A write that fails (disk full, file-size limit) cuts the file back to
its last whole line and raises :class:`~liveaffect.runtime.sinks.SinkError` (exit status 1)
naming the file, as the CSV does.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sys
from pathlib import Path

from liveaffect.runtime.streams.base import StreamError, StreamSink
from liveaffect.runtime.streams.meta import StreamMeta
from liveaffect.runtime.streams.records import FramePacket

log = logging.getLogger(__name__)


def _open_append(path: Path):
    """``path`` opened to append bytes, unbuffered. Non-blocking open, so a named pipe
    without a reader fails (ENXIO) instead of waiting for one; writes then block again."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o666)
    os.set_blocking(fd, True)
    return open(fd, "ab", buffering=0)


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
                self._file = _open_append(self.path)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # waiting would hang the start for good
                    raise StreamError(
                        f"jsonl:{self.path}: a named pipe with no reader; start the reader first"
                    ) from None
                raise StreamError(f"jsonl:{self.path}: cannot write ({exc.strerror})") from None
            self._owned = True
        self._emptied = not self._owned
        self._good: int | None = None  # bytes of whole lines in a file that was emptied
        self.lines = 0

    def describe(self) -> str:
        return f"jsonl:{self.path if self.path is not None else '- (stdout)'}"

    def send(self, packet: FramePacket) -> None:
        """Write this frame's line and flush it.

        Raises:
            liveaffect.runtime.sinks.SinkError: the write failed (disk full ...): the file
                keeps its whole lines, and the outlet is closed.
        """
        if self.closed:
            return
        if not self._emptied:
            self._emptied = True
            with contextlib.suppress(OSError):  # a pipe or a device cannot be truncated
                self._file.truncate(0)
                self._good = 0
        line = packet.json_text + "\n"
        try:
            if self._owned:
                self._write_all(line.encode("utf-8"))
            else:
                self._file.write(line)
                self._file.flush()
        except BrokenPipeError:
            log.warning("%s: the reader went away; no more lines are written", self.describe())
            self._abandon_stdout()
            self.closed = True
            return
        except OSError as exc:
            raise self._failed(exc) from None
        self.lines += 1

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = self._file.write(view)
            if not n:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            view = view[n:]
        if self._good is not None:
            self._good += len(data)

    def _failed(self, exc: OSError):
        """Cut a torn last line, close the outlet and say what failed (SinkError)."""
        from liveaffect.runtime.sinks import write_failed

        if self._owned and self._good is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._file.fileno(), self._good)
        self._abandon_stdout()  # its unwritten rest would fail again at exit
        self.close()
        where = self.path if self.path is not None else "standard output"
        return write_failed(where, exc, f"its {self.lines} lines written before are kept")

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
            with contextlib.suppress(OSError, ValueError):
                self._file.flush()
