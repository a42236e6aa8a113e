"""A WebSocket server that sends every connected client one JSON object per frame.

The server (``websockets``) runs its own asyncio event loop on its own thread; ``send``
only hands the frame's JSON text over, so a client can never slow the analysis. Messages
are sent uncompressed (no permessage-deflate: on a frame's half-kilobyte per face it
costs both ends more CPU than it saves). Each client has a
small queue: when it cannot keep up, its oldest messages are dropped and counted (one
warning when the first is dropped, the total when the server closes). That queue only fills
once the sockets' buffers (send and receive, hundreds of KB) are full: until then a slow
client gets every message, later and later. Clients may
connect and leave at any time; what they send is ignored. The JSON is
:func:`liveaffect.runtime.streams.records.frame_record`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import logging
import socket
import threading

from liveaffect.runtime.streams.base import StreamError, StreamSink
from liveaffect.runtime.streams.meta import StreamMeta
from liveaffect.runtime.streams.records import FramePacket
from liveaffect.runtime.streams.targets import host_port

log = logging.getLogger(__name__)
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 3.0


class _Client:
    """One connection's bounded queue (newest kept) and its wake-up event."""

    def __init__(self, ws, queue_size: int) -> None:
        self.ws = ws
        self.queue: collections.deque[str] = collections.deque(maxlen=queue_size)
        self.ready = asyncio.Event()
        self.dropped = 0
        self.gone = False

    async def watch(self) -> None:
        """Read and drop what the client sends, and wake the sender when it leaves (it is
        otherwise only noticed on a send). Unread messages would fill the connection's
        incoming queue (16), after which it stops reading the socket, the client's pongs
        included, and the keepalive closes it about 40 s later (1011 ping timeout)."""
        from websockets.exceptions import ConnectionClosed

        with contextlib.suppress(ConnectionClosed):
            async for _ in self.ws:
                pass
        await self.ws.wait_closed()
        self.gone = True
        self.ready.set()


def bind_error(url: str, host: str, port: int, exc: OSError) -> str:
    """One sentence for a server that cannot listen on ``host:port``."""
    if exc.errno == errno.EADDRINUSE:
        return f"{url}: port {port} is already in use on {host}"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"{url}: not allowed to listen on port {port} (ports below 1024 need privileges)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{url}: {host} is not an address of this machine"
    return f"{url}: cannot listen on {host_port(host, port)} ({exc.strerror or exc})"


class WebSocketSink(StreamSink):
    """Serves ``ws://host:port``; every client receives one JSON text message per frame.

    Args:
        meta: model, labels and clock.
        host: address to bind (``127.0.0.1``: this machine only; ``0.0.0.0``: everyone).
        port: TCP port; 0 picks a free one (see :attr:`port`).
        queue_size: messages kept per client before its oldest are dropped.

    Raises:
        StreamError: the port is in use, the host does not resolve or is not local.
    """

    def __init__(self, meta: StreamMeta, host: str, port: int, queue_size: int = 8) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be 1 or more, got {queue_size}")
        self.meta, self.host, self.port, self.queue_size = meta, host, int(port), queue_size
        self.clients: set[_Client] = set()
        self.sent = 0
        self.dropped = 0
        self._stopping = False
        self._error: str | None = None
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="liveaffect-ws", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            self._error = f"{self._url()}: the server did not start in {START_TIMEOUT_S:g} s"
        if self._error:
            self.closed = True
            self._stop_loop()
            raise StreamError(self._error)

    def _url(self) -> str:
        return f"ws://{host_port(self.host, self.port)}"

    def describe(self) -> str:
        return self._url()

    # -- server thread -------------------------------------------------------------------
    async def _listen(self):
        from websockets.asyncio.server import serve

        # No permessage-deflate: a frame's JSON is about 0.5 KB per face, and compressing it
        # (and the client's inflating) was the largest item of the server thread's CPU.
        return await serve(self._handle, self.host, self.port, close_timeout=1.0, compression=None)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            server = self._loop.run_until_complete(self._listen())
        except Exception as exc:
            if isinstance(exc, socket.gaierror):
                self._error = f"{self._url()}: cannot resolve host {self.host!r}"
            elif isinstance(exc, OSError):
                self._error = bind_error(self._url(), self.host, self.port, exc)
            else:
                self._error = f"{self._url()}: the server failed to start ({exc})"
            self._ready.set()
            self._loop.close()
            return
        self.port = int(server.sockets[0].getsockname()[1])
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._shutdown(server)

    def _shutdown(self, server) -> None:
        self._stopping = True
        for client in list(self.clients):
            client.ready.set()
        server.close()
        with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
            self._loop.run_until_complete(asyncio.wait_for(server.wait_closed(), STOP_TIMEOUT_S))
        self._loop.close()

    async def _handle(self, ws) -> None:
        from websockets.exceptions import ConnectionClosed

        client = _Client(ws, self.queue_size)
        self.clients.add(client)
        watcher = asyncio.ensure_future(client.watch())
        try:
            while not self._stopping and not client.gone:
                await client.ready.wait()
                client.ready.clear()
                while client.queue and not self._stopping:
                    await ws.send(client.queue.popleft())
                    self.sent += 1
        except ConnectionClosed:
            pass
        finally:
            self.clients.discard(client)
            watcher.cancel()

    def _broadcast(self, text: str) -> None:
        for client in self.clients:
            if len(client.queue) == client.queue.maxlen:
                client.dropped += 1
                self.dropped += 1
                if self.dropped == 1:
                    log.warning(
                        "%s: a client is not keeping up; dropping its oldest messages "
                        "(counted, total shown at the end)",
                        self._url(),
                    )
            client.queue.append(text)
            client.ready.set()

    # -- sending thread --------------------------------------------------------------------
    def send(self, packet: FramePacket) -> None:
        """Queue this frame's JSON for every connected client (nothing to do without one)."""
        if self.closed or not self.clients:
            return
        with contextlib.suppress(RuntimeError):  # the loop already stopped
            self._loop.call_soon_threadsafe(self._broadcast, packet.json_text)

    def _stop_loop(self) -> None:
        if not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(STOP_TIMEOUT_S + 2.0)

    def _close(self) -> None:
        self._stop_loop()
        if self.dropped:
            log.warning("%s: %d messages dropped for slow clients", self._url(), self.dropped)
