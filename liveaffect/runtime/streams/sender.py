"""Background threads that send every frame to all stream outlets, on CPU time the loop leaves.

The live loop's ``write`` only puts the frame's result in a bounded queue; a sending
thread builds one :class:`~.records.FramePacket` per frame and hands it to each outlet in
turn, so the JSON is made once and the encoding and sending run while the loop waits for
the detector, OpenCV or the model (which release the GIL). Frames are sent in order and
none is dropped: when the queue is full, ``write`` waits.

Two threads share the queue, one frame at a time, in order:

* the **sender** runs at the lowest CPU priority the system has (Linux ``SCHED_IDLE``):
  it only gets a core that nothing else wants. The live loop keeps both cores of a small
  machine busy while it detects and scores faces, and leaves one idle while it tracks,
  smooths and writes; a sender at normal priority took its time from the busy part and
  slowed the loop by about 5% (``bench/README.md``, "Streaming out");
* the **catch-up** thread, at normal priority, looks every half :data:`CATCH_UP_S` and
  sends the frames that have waited that long (a loop that leaves no core idle, another
  program taking the CPU). So a frame goes out at most :data:`CATCH_UP_S` after the loop
  wrote it, whatever the load, as with one thread at normal priority.

An outlet that raises stops the sending; the error is raised again by the next ``write``
(so it ends the run as it would without the threads) or by :meth:`StreamSender.close`.
``close`` sends what is still queued before it returns; closing the outlets is left to
their owner. Where the system has no ``SCHED_IDLE`` (not Linux) the sender keeps the
normal priority.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Sequence

import numpy as np

from liveaffect.runtime.streams.base import StreamSink
from liveaffect.runtime.streams.meta import StreamMeta
from liveaffect.runtime.streams.records import FramePacket, frame_size_of
from liveaffect.types import FrameResult, Sink

QUEUE_FRAMES = 32
CATCH_UP_S = 0.05
"""Seconds a frame may wait for the low-priority sender before the catch-up thread sends it."""
log = logging.getLogger(__name__)


def lower_priority() -> bool:
    """Move the calling thread to ``SCHED_IDLE`` (Linux); False where that is not possible.

    Lowering needs no privilege; an unprivileged thread cannot raise it again, so only a
    thread that stays low calls this.
    """
    policy = getattr(os, "SCHED_IDLE", None)
    if policy is None:
        return False
    try:
        os.sched_setscheduler(0, policy, os.sched_param(0))
    except OSError as exc:  # a container or kernel that refuses it: normal priority
        log.debug("stream sender keeps normal priority: %s", exc)
        return False
    return True


class StreamSender(Sink):
    """Feeds ``outlets`` from two threads of its own (see the module docstring).

    Args:
        outlets: the opened outlets; each gets every frame, in order.
        meta: model, labels and clock (shared by the outlets).
        queue_frames: frames waiting at most before ``write`` blocks.
        catch_up_s: seconds a frame waits for the low-priority sender at most.
        low_priority: run the sender at ``SCHED_IDLE`` (False: normal priority).
    """

    def __init__(
        self,
        outlets: Sequence[StreamSink],
        meta: StreamMeta,
        queue_frames: int = QUEUE_FRAMES,
        catch_up_s: float = CATCH_UP_S,
        low_priority: bool = True,
    ) -> None:
        if queue_frames < 1:
            raise ValueError(f"queue_frames must be 1 or more, got {queue_frames}")
        if not catch_up_s > 0:
            raise ValueError(f"catch_up_s must be positive, got {catch_up_s}")
        self.outlets, self.meta = list(outlets), meta
        self.queue_frames, self.catch_up_s = int(queue_frames), float(catch_up_s)
        self.frames = 0
        self.caught_up = 0  # frames the catch-up thread sent
        self.low_priority = False  # True once the sender runs at SCHED_IDLE
        self.closed = False
        self._waiting: deque[tuple[float, FrameResult, tuple[int, int] | None]] = deque()
        lock = threading.Lock()  # guards _waiting and _stopping
        self._more = threading.Condition(lock)  # a frame came (or closing): the sender
        self._room = threading.Condition(lock)  # a frame left: a waiting write
        self._poll = threading.Condition(lock)  # closing: the catch-up thread
        self._sending = threading.Lock()  # one frame at a time, in order
        self._stopping = False
        self._error: BaseException | None = None
        self._reported = False
        self._threads = [
            threading.Thread(
                target=self._run_sender,
                args=(low_priority,),
                name="liveaffect-streams",
                daemon=True,
            ),
            threading.Thread(
                target=self._run_catch_up, name="liveaffect-streams-catch-up", daemon=True
            ),
        ]
        for thread in self._threads:
            thread.start()

    def write(self, frame_bgr: np.ndarray, result: FrameResult) -> None:
        """Queue this frame for every outlet (waits while ``queue_frames`` are queued).

        Raises:
            Exception: what an outlet raised while sending an earlier frame.
        """
        self._raise_error()
        if self.closed:
            return
        with self._more:
            while len(self._waiting) >= self.queue_frames and self._error is None:
                self._room.wait()
            self._waiting.append((time.monotonic(), result, frame_size_of(frame_bgr)))
            self._more.notify()

    def _send_oldest(self, written_before: float | None = None) -> bool:
        """Send the oldest waiting frame to every outlet (only if it was written before
        ``written_before``, a ``time.monotonic()`` value); False when none was sent."""
        with self._sending:
            with self._more:
                if not self._waiting or (
                    written_before is not None and self._waiting[0][0] > written_before
                ):
                    return False
                _, result, size = self._waiting.popleft()
                self._room.notify()
            if self._error is None:  # after an error, frames are taken and not sent
                packet = FramePacket(result, self.meta, size)
                try:
                    for outlet in self.outlets:
                        outlet.send(packet)
                    self.frames += 1
                except BaseException as exc:  # raised again on the loop's thread
                    self._error = exc
            return True

    def _run_sender(self, low_priority: bool) -> None:
        if low_priority:
            self.low_priority = lower_priority()
        while True:
            with self._more:
                while not self._waiting and not self._stopping:
                    self._more.wait()
                if not self._waiting:
                    return
            self._send_oldest()

    def _run_catch_up(self) -> None:
        every = self.catch_up_s / 2
        while True:
            with self._poll:
                if not self._stopping:
                    self._poll.wait(every)
                stopping = self._stopping
            # a frame written over half the bound ago has waited too long by the next look
            cutoff = None if stopping else time.monotonic() - every
            while self._send_oldest(cutoff):
                self.caught_up += 1
            if stopping:
                return

    def _raise_error(self) -> None:
        if self._error is not None and not self._reported:
            self._reported = True
            raise self._error

    def close(self) -> None:
        """Send every queued frame, stop the threads (safe twice).

        Raises:
            Exception: what an outlet raised and no ``write`` has raised yet.
        """
        if not self.closed:
            self.closed = True
            with self._more:
                self._stopping = True
                self._more.notify_all()
                self._poll.notify_all()
            for thread in self._threads:
                thread.join()
        self._raise_error()
