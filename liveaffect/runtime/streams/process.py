"""The outlets in a process of their own: streaming never holds the analysis' interpreter lock.

:class:`StreamProcess` is the sink the live loop feeds when ``--stream`` is given. Its
``write`` packs the frame's faces (ids, boxes, scores, the three heads' outputs: a few
hundred bytes per face) and writes them to a pipe; a child process opens every outlet,
builds each frame's :class:`~.records.FramePacket` (the JSON once) and hands it to every
outlet in turn. Why a process and not a thread: the encoding and sending are Python code,
and a sending thread holds the interpreter lock while the loop's threads want it back
between the detector, OpenCV and the model. Priority (``--stream-priority``):

- ``low`` (the default): nice +19 and batch scheduling (:func:`lower_priority`), so the
  child takes only the CPU time the analysis leaves. With all four outlets and one client
  each, the one-face clip lost 3.7% and 4.3% of its FPS (``bench/stream_cost.py``, 17
  rounds each, 2-core machine, 2026-12-03), against 7.8% with the earlier sending thread
  in the same hour. But when other programs keep every core busy the child waits for
  them: with two spinning processes beside the app, data reached an OSC receiver 86 ms
  after the loop wrote it (median; worst 0.5-0.8 s; ``bench/stream_latency.py``). Nothing
  is lost and timestamps stay the capture times.
- ``normal``: the app's priority: 3.2 ms (median; worst 13 ms) under the same load, 6.5%
  of the FPS on an idle machine.

- The child is a fresh interpreter, ``python -m liveaffect.runtime.streams.process FD``
  (not ``fork``: the app has TensorFlow's and LiteRT's threads, which a fork would copy
  half-way; not ``multiprocessing``'s spawn, which would import the app's main script
  again). It talks to the app over a socket pair (``multiprocessing.connection``'s
  framing) and shares its standard output and error. It opens the outlets before any
  capture starts: a port in use or a bad host is a :class:`~.base.StreamError` from the
  constructor, as when the outlets were opened in the app's own process.
- Frames are sent in order and none is dropped: when the pipe is full, ``write`` waits.
- An outlet that raises stops the sending; the exception (or a :class:`StreamError` with
  its text, if it cannot be pickled) is raised again by the next ``write`` or by
  :meth:`StreamProcess.close`, which ends the run as it would in one process.
- The child ignores Ctrl-C, SIGTERM and SIGHUP (a terminal sends Ctrl-C to the whole
  process group): the app decides when streaming ends, and :meth:`close` sends what is
  still queued, then closes every outlet. If the app dies, the child sees the pipe close,
  closes its outlets and exits.
- Capture times are converted with the parent's clock offset (``StreamMeta``);
  ``pylsl.local_clock()`` and ``time.monotonic()`` are system-wide clocks, the same in
  both processes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

import liveaffect
from liveaffect.runtime.streams.base import StreamError
from liveaffect.runtime.streams.meta import StreamMeta
from liveaffect.runtime.streams.records import FramePacket, frame_size_of
from liveaffect.runtime.streams.targets import StreamTarget
from liveaffect.types import AffectPrediction, Detection, FaceResult, FrameResult, Sink

PRIORITIES = ("low", "normal")
"""``low``: nice +19 and ``SCHED_BATCH`` (:func:`lower_priority`), the default; ``normal``:
the app's own priority."""
NICE = 19
"""How much lower the child's priority is than the app's with ``priority="low"``."""
POLL_S = 0.004
IDLE_AFTER_S = 0.1
"""While frames come, the child looks for the next one every ``POLL_S`` instead of waiting
in a read that each ``write`` would have to wake it from (a wake-up costs the app's
thread far more than the write itself); after ``IDLE_AFTER_S`` without one it waits."""
START_TIMEOUT_S = 60.0
CLOSE_TIMEOUT_S = 60.0
_STOP, _FLUSH = b"stop", b"flush"


def _values(array) -> list[float] | None:
    return None if array is None else np.ravel(array).tolist()


def pack_frame(result: FrameResult, frame_size: tuple[int, int] | None) -> bytes:
    """What the outlets need of a frame, pickled: its number, time and size, and each face's
    id, box, score and the three heads' outputs as Python floats (exact; lists pickle
    several times faster than arrays). No image, key points or timings."""
    faces = []
    for f in result.faces:
        pred = f.prediction or AffectPrediction()
        faces.append(
            (
                int(f.track_id),
                tuple(float(v) for v in f.detection.xyxy),
                float(f.detection.score),
                _values(pred.expr_probs),
                _values(pred.va),
                _values(pred.au_probs),
            )
        )
    stamps = (float(result.timestamp_ms), float(result.read_at_ms))
    data = (int(result.index), stamps, frame_size, faces)
    return pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)


def _array(values: list[float] | None) -> np.ndarray | None:
    return None if values is None else np.asarray(values, np.float64)


def unpack_frame(data: bytes) -> tuple[FrameResult, tuple[int, int] | None]:
    """The frame (with only what :func:`pack_frame` keeps) and its size."""
    index, (timestamp_ms, read_at_ms), frame_size, faces = pickle.loads(data)
    return (
        FrameResult(
            index=index,
            timestamp_ms=timestamp_ms,
            read_at_ms=read_at_ms,
            faces=tuple(
                FaceResult(
                    track_id,
                    Detection(xyxy, score),
                    AffectPrediction(_array(expr), _array(va), _array(au)),
                )
                for track_id, xyxy, score, expr, va, au in faces
            ),
        ),
        frame_size,
    )


class StreamProcess(Sink):
    """Opens ``targets`` in a child process and feeds them every frame (module docstring).

    Args:
        targets: the parsed ``--stream`` targets.
        meta: model, labels, face slots and clock (shared by the outlets).
        priority: ``"low"`` (nice +19, batch scheduling: it takes only the CPU time the
            analysis leaves) or ``"normal"`` (the app's; see the module docstring).

    Attributes:
        outlets: each outlet's description, in the order of ``targets`` (a WebSocket
            server asked for port 0 names the port it got).

    Raises:
        StreamError: an outlet cannot be opened, or the child did not start.
    """

    def __init__(
        self, targets: Sequence[StreamTarget], meta: StreamMeta, priority: str = "low"
    ) -> None:
        if priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {', '.join(PRIORITIES)}, got {priority!r}")
        ours, theirs = socket.socketpair()
        package_root = str(Path(liveaffect.__file__).resolve().parents[1])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
        with theirs:
            self._process = subprocess.Popen(
                [sys.executable, "-m", __name__, str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,  # stdout and stderr stay the app's (jsonl:-, logs)
                env=env,
            )
        self._conn = Connection(ours.detach())
        self._readable = select.poll()  # one system call per write to look for an error
        self._readable.register(self._conn.fileno(), select.POLLIN)
        self.closed = False
        self._error: BaseException | None = None
        self._reported = False
        with contextlib.suppress(OSError):
            self._conn.send((list(targets), meta, NICE if priority == "low" else 0))
        reply = self._wait_for(("ready", "failed"), START_TIMEOUT_S)
        if reply is None or reply[0] == "failed":
            self.closed = True
            self._end_child()
            raise StreamError(reply[1] if reply else self._gone("did not start"))
        self.outlets: list[str] = list(reply[1])

    @property
    def pid(self) -> int | None:
        """The child's process id."""
        return self._process.pid

    # -- the app's side ----------------------------------------------------------------
    def write(self, frame_bgr: np.ndarray, result: FrameResult) -> None:
        """Queue this frame for every outlet (waits while the pipe is full).

        Raises:
            Exception: what an outlet raised while sending an earlier frame.
            liveaffect.runtime.sinks.SinkError: the child ended without a word (the live
                loop then stops with an error, exit status 1).
        """
        self._poll()
        self._raise_error()
        if self.closed:
            return
        try:
            self._conn.send_bytes(pack_frame(result, frame_size_of(frame_bgr)))
        except OSError:
            self._poll()
            if self._error is None:  # it died without a word: end the run as a failed write
                from liveaffect.runtime.sinks import SinkError

                self._error = SinkError(self._gone("ended while the run went on"), 1)
            self._raise_error()

    def flush(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """Wait until every frame written so far has been handed to every outlet.

        Raises:
            Exception: what an outlet raised, if no ``write`` has raised it yet.
        """
        if not self.closed:
            with contextlib.suppress(OSError):
                self._conn.send_bytes(_FLUSH)
            self._wait_for(("flushed",), timeout_s)
        self._raise_error()

    def close(self) -> None:
        """Send every queued frame, close the outlets, end the child (safe twice).

        Raises:
            Exception: what an outlet raised and no ``write`` has raised yet.
        """
        if not self.closed:
            self.closed = True
            with contextlib.suppress(OSError):
                self._conn.send_bytes(_STOP)
            if self._wait_for(("closed",), CLOSE_TIMEOUT_S) is None and self._error is None:
                self._error = StreamError(self._gone("did not close its outlets"))
            self._end_child()
        self._raise_error()

    # -- helpers -----------------------------------------------------------------------
    def _wait_for(self, kinds: tuple[str, ...], timeout_s: float):
        """Read the child's messages until one of ``kinds`` (returned) or the child ends
        or ``timeout_s`` passes (None); errors on the way are kept for raising."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if not self._conn.poll(0.1):
                    if self._process.poll() is not None and not self._conn.poll():
                        return None
                    continue
                message = self._conn.recv()
            except (EOFError, OSError):
                return None
            if message[0] == "error":
                self._keep_error(message[1])
            elif message[0] in kinds:
                return message
        return None

    def _poll(self) -> None:
        if self.closed or not self._readable.poll(0):
            return
        with contextlib.suppress(EOFError, OSError):
            while self._conn.poll():
                message = self._conn.recv()
                if message[0] == "error":
                    self._keep_error(message[1])

    def _keep_error(self, pickled: bytes) -> None:
        if self._error is None:
            self._error = pickle.loads(pickled)

    def _raise_error(self) -> None:
        if self._error is not None and not self._reported:
            self._reported = True
            raise self._error

    def _gone(self, what: str) -> str:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(1.0)  # a child that just died: its exit code
        code = self._process.poll()
        how = f" (exit code {code})" if code is not None else ""
        return f"the streaming process {what}{how}"

    def _end_child(self) -> None:
        try:
            self._process.wait(5.0)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(5.0)
        self._conn.close()


# -- the child's side ----------------------------------------------------------------------
def lower_priority(nice: int) -> None:
    """Lower this process's priority by ``nice`` and, on Linux, make it ``SCHED_BATCH``: it
    then never preempts the app's threads when it wakes up, yet still gets its share of
    a busy machine (``SCHED_IDLE`` measured the same but can starve the streams, and with
    them the app, when other programs keep every core busy)."""
    with contextlib.suppress(OSError):
        os.nice(nice)
    if hasattr(os, "SCHED_BATCH"):
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))


def _pickled_error(exc: BaseException) -> bytes:
    """``exc`` pickled, or a StreamError with its text when it cannot be."""
    try:
        data = pickle.dumps(exc)
        pickle.loads(data)
        return data
    except Exception:
        return pickle.dumps(StreamError(f"{type(exc).__name__}: {exc}"))


def _serve(conn) -> None:
    """The child: open the outlets, then send every frame until told to stop."""
    from liveaffect.runtime.streams import open_streams

    try:
        targets, meta, nice = conn.recv()
    except (EOFError, OSError):
        return
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    if nice:
        lower_priority(nice)
    try:
        outlets = open_streams(targets, meta)
    except StreamError as exc:
        conn.send(("failed", str(exc)))
        return
    except Exception as exc:
        conn.send(("failed", f"cannot open the streams: {type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", [o.describe() for o in outlets]))
    failed = False
    last_frame = time.monotonic()
    try:
        while True:
            try:
                if time.monotonic() - last_frame > IDLE_AFTER_S:
                    conn.poll(None)  # idle: sleep until the next frame
                while not conn.poll():
                    time.sleep(POLL_S)  # frames are coming: look again soon, unasked
                data = conn.recv_bytes()
            except (EOFError, OSError):
                return  # the app went away: close the outlets (finally) and end
            last_frame = time.monotonic()
            if data == _STOP:
                break
            if data == _FLUSH:
                conn.send(("flushed",))
                continue
            if failed:
                continue  # keep reading so a waiting write() never blocks for good
            result, frame_size = unpack_frame(data)
            packet = FramePacket(result, meta, frame_size)
            try:
                for outlet in outlets:
                    outlet.send(packet)
            except Exception as exc:
                failed = True
                conn.send(("error", _pickled_error(exc)))
    finally:
        for outlet in outlets:
            with contextlib.suppress(Exception):
                outlet.close()
    with contextlib.suppress(OSError):
        conn.send(("closed",))


class _StatusFormatter(logging.Formatter):
    """``warning: ...`` / ``error: ...``, as the app writes its own status lines."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


def log_to_stderr() -> logging.Handler:
    """Send the outlets' warnings (a slow WebSocket client, a reader that went away, a
    failed OSC send) to standard error as ``warning: ...`` lines (Python's fallback
    printed the bare message); returns the handler."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_StatusFormatter())
    handler.setLevel(logging.WARNING)
    logging.getLogger("liveaffect").addHandler(handler)
    return handler


def main(argv: list[str]) -> int:
    """The child's entry point: ``FD`` is its end of the socket pair."""
    log_to_stderr()
    with Connection(int(argv[0])) as conn:
        _serve(conn)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
