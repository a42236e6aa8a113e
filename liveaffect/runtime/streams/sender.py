"""One background thread that sends every frame to all stream outlets.

The live loop's ``write`` only puts the frame's result on a bounded queue; the thread
builds one :class:`~.records.FramePacket` per frame and hands it to each outlet in turn,
so the JSON is made once and the encoding and sending run while the loop is inside the
detector, OpenCV or the model (which release the GIL). Frames are sent in order and none
is dropped: when the queue is full, ``write`` waits for the thread. An outlet that raises
stops the sending; the error is raised again by the next ``write`` (so it ends the run as
it would without the thread) or by :meth:`StreamSender.close`. ``close`` sends what is
still queued before it returns; closing the outlets is left to their owner.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence

import numpy as np

from liveaffect.runtime.streams.base import StreamSink
from liveaffect.runtime.streams.meta import StreamMeta
from liveaffect.runtime.streams.records import FramePacket, frame_size_of
from liveaffect.types import FrameResult, Sink

QUEUE_FRAMES = 32
_STOP = object()


class StreamSender(Sink):
    """Feeds ``outlets`` from a thread of its own (see the module docstring).

    Args:
        outlets: the opened outlets; each gets every frame, in order.
        meta: model, labels and clock (shared by the outlets).
        queue_frames: frames waiting at most before ``write`` blocks.
    """

    def __init__(
        self, outlets: Sequence[StreamSink], meta: StreamMeta, queue_frames: int = QUEUE_FRAMES
    ) -> None:
        if queue_frames < 1:
            raise ValueError(f"queue_frames must be 1 or more, got {queue_frames}")
        self.outlets, self.meta = list(outlets), meta
        self.frames = 0
        self.closed = False
        self._queue: queue.Queue = queue.Queue(maxsize=queue_frames)
        self._error: BaseException | None = None
        self._reported = False
        self._thread = threading.Thread(target=self._run, name="liveaffect-streams", daemon=True)
        self._thread.start()

    def write(self, frame_bgr: np.ndarray, result: FrameResult) -> None:
        """Queue this frame for every outlet.

        Raises:
            Exception: what an outlet raised while sending an earlier frame.
        """
        self._raise_error()
        if not self.closed:
            self._queue.put((result, frame_size_of(frame_bgr)))

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if self._error is not None:
                continue  # keep taking frames so a waiting write() never blocks for good
            packet = FramePacket(item[0], self.meta, item[1])
            try:
                for outlet in self.outlets:
                    outlet.send(packet)
                self.frames += 1
            except BaseException as exc:  # raised again on the loop's thread
                self._error = exc

    def _raise_error(self) -> None:
        if self._error is not None and not self._reported:
            self._reported = True
            raise self._error

    def close(self) -> None:
        """Send every queued frame, stop the thread (safe twice).

        Raises:
            Exception: what an outlet raised and no ``write`` has raised yet.
        """
        if not self.closed:
            self.closed = True
            self._queue.put(_STOP)
            self._thread.join()
        self._raise_error()
