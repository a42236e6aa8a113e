"""The WebSocket outlet with real ``websockets`` clients on loopback: one JSON per frame,
clients coming and going, a stalled client that cannot slow the loop, port in use."""

from __future__ import annotations

import base64
import json
import os
import socket
import time

import numpy as np
import pytest

from liveaffect.runtime.live import run_loop
from liveaffect.runtime.streams import StreamError, StreamMeta
from liveaffect.runtime.streams.websocket import WebSocketSink
from liveaffect.types import AffectPrediction, Detection, FaceResult, Frame, FrameResult

IMAGE = np.zeros((120, 160, 3), np.uint8)
PRED = AffectPrediction(
    expr_probs=np.full(8, 0.125, np.float32), va=np.zeros(2, np.float32), au_probs=None
)


def result(index, faces=1):
    found = tuple(
        FaceResult(i + 1, Detection((1.0 * i, 2.0, 30.0 + i, 40.0), 0.9), PRED)
        for i in range(faces)
    )
    return FrameResult(index=index, timestamp_ms=1000.0 + 40.0 * index, faces=found)


def wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_every_client_gets_one_json_per_frame_and_may_leave():
    from websockets.sync.client import connect

    with WebSocketSink(StreamMeta(), "127.0.0.1", 0) as sink:
        assert sink.port > 0 and sink.describe() == f"ws://127.0.0.1:{sink.port}"
        sink.write(IMAGE, result(0))  # nobody connected: nothing queued, nothing fails
        with connect(f"ws://127.0.0.1:{sink.port}") as first:
            wait_for(lambda: len(sink.clients) == 1)
            for i in range(1, 4):
                sink.write(IMAGE, result(i, faces=2))
            got = [json.loads(first.recv(timeout=10)) for _ in range(3)]
            assert [g["frame"] for g in got] == [1, 2, 3]
            assert [f["id"] for f in got[0]["faces"]] == [1, 2]
            assert got[0]["faces"][0]["probs"]["Neutral"] == 0.125
            assert got[0]["faces"][0]["aus"] is None
            with connect(f"ws://127.0.0.1:{sink.port}") as second:
                wait_for(lambda: len(sink.clients) == 2)
                sink.write(IMAGE, result(4))
                assert json.loads(second.recv(timeout=10))["frame"] == 4
                assert json.loads(first.recv(timeout=10))["frame"] == 4
        wait_for(lambda: not sink.clients)  # both left; the server goes on
        sink.write(IMAGE, result(5))
    sink.close()  # safe twice
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", sink.port), timeout=2).close()


def test_what_a_client_sends_is_read_and_dropped_so_its_pongs_still_arrive():
    from websockets.sync.client import connect

    sink = WebSocketSink(StreamMeta(), "127.0.0.1", 0)
    with sink, connect(f"ws://127.0.0.1:{sink.port}") as client:
        wait_for(lambda: len(sink.clients) == 1)
        for i in range(100):  # more than the connection's incoming queue (16) holds
            client.send(f"subscribe {i}")
        # a server that stopped reading never answers: its keepalive ping then times out
        # and it closes the connection (1011) about 40 s later
        assert client.ping().wait(5), "the server stopped reading the connection"
        sink.write(IMAGE, result(0))
        assert json.loads(client.recv(timeout=10))["frame"] == 0


def test_messages_are_not_compressed_even_when_the_client_offers_deflate():
    from websockets.sync.client import connect

    sink = WebSocketSink(StreamMeta(), "127.0.0.1", 0)
    with sink, connect(f"ws://127.0.0.1:{sink.port}", compression="deflate") as client:
        assert "permessage-deflate" in client.request.headers["Sec-WebSocket-Extensions"]
        assert "Sec-WebSocket-Extensions" not in client.response.headers  # declined
        assert client.protocol.extensions == []
        wait_for(lambda: len(sink.clients) == 1)
        sink.write(IMAGE, result(0))
        assert json.loads(client.recv(timeout=10))["frame"] == 0


def _stalled_client(port: int) -> socket.socket:
    """A client that completes the handshake, then never reads (tiny receive buffer)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    reply = b""
    while b"\r\n\r\n" not in reply:
        reply += sock.recv(1)  # byte by byte: read nothing past the handshake
    assert reply.startswith(b"HTTP/1.1 101")
    return sock


class _Replay:
    """A stand-in pipeline: frame i becomes a result with many faces (large messages)."""

    def process(self, frame: Frame) -> FrameResult:
        return result(frame.index, faces=40)


class _Frames(list):
    """Frames in a list, as a FrameSource (never drops)."""

    fps, error = 25.0, None

    def close(self) -> None:
        pass


def test_a_stalled_client_loses_old_messages_but_not_frames(caplog):
    from websockets.sync.client import connect

    frames = [Frame(i, 40.0 * i, IMAGE) for i in range(600)]
    with WebSocketSink(StreamMeta(), "127.0.0.1", 0, queue_size=4) as sink:
        stalled = _stalled_client(sink.port)
        with connect(f"ws://127.0.0.1:{sink.port}", max_size=None) as live:
            wait_for(lambda: len(sink.clients) == 2)
            summary = run_loop(_Frames(frames), _Replay(), [sink])
            assert summary.frames == 600 and summary.stopped == "end"
            wait_for(lambda: sink.dropped > 0)  # the stalled client really fell behind
            last = None
            while last is None or last["frame"] != 599:  # the live client ends up current
                last = json.loads(live.recv(timeout=10))
        stalled.close()
    warnings = [r.getMessage() for r in caplog.records if "not keeping up" in r.getMessage()]
    assert len(warnings) == 1  # logged once, however many were dropped
    assert any(f"{sink.dropped} messages dropped" in r.getMessage() for r in caplog.records)


def test_port_in_use_and_bad_host_are_clean_errors():
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    try:
        with pytest.raises(StreamError, match=f"port {port} is already in use"):
            WebSocketSink(StreamMeta(), "127.0.0.1", port)
    finally:
        blocker.close()
    with pytest.raises(StreamError, match="cannot resolve host"):
        WebSocketSink(StreamMeta(), "no-such-host.invalid", 0)
    with pytest.raises(StreamError, match="not an address of this machine"):
        WebSocketSink(StreamMeta(), "192.0.2.1", 0)  # TEST-NET-1: never local


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback")
def test_an_ipv6_server_is_named_by_a_url_a_client_can_use():
    from websockets.sync.client import connect

    with WebSocketSink(StreamMeta(), "::1", 0) as sink:
        url = sink.describe()
        assert url == f"ws://[::1]:{sink.port}"  # it was ws://::1:PORT
        with connect(url) as ws:
            wait_for(lambda: sink.clients)
            sink.write(IMAGE, result(0))
            assert json.loads(ws.recv(timeout=10))["frame"] == 0
