"""Stream every face's affect out, live: Lab Streaming Layer, OSC, WebSocket, JSON lines.

Each outlet is a :class:`liveaffect.types.Sink` with a lifetime (``close()`` safe twice):

- :class:`~.lsl.LslSink` (``lsl``, ``lsl:NAME``): an LSL outlet, fixed face slots;
- :class:`~.osc.OscSink` (``osc://HOST:PORT``): OSC messages, one bundle per frame;
- :class:`~.websocket.WebSocketSink` (``ws://HOST:PORT``): a server, one JSON per frame;
- :class:`~.jsonl.JsonlSink` (``jsonl:PATH``, ``jsonl:-``): the same JSON, one line per frame.

:func:`parse_targets` checks what the user typed; :func:`open_streams` binds and opens
them all or none. The live app runs them in a process of its own,
:class:`~.process.StreamProcess`: it opens the outlets there (and reports a port in use
before any capture starts), and the live loop only pipes each frame's numbers to it; the
child builds each frame's :class:`~.records.FramePacket` (the JSON once) and hands it to
every outlet.
"""

from __future__ import annotations

from liveaffect.runtime.streams.base import StreamError, StreamSink
from liveaffect.runtime.streams.meta import StreamMeta
from liveaffect.runtime.streams.targets import StreamTarget, parse_target, parse_targets

__all__ = [
    "StreamError",
    "StreamMeta",
    "StreamSink",
    "StreamTarget",
    "open_stream",
    "open_streams",
    "parse_target",
    "parse_targets",
]

_OPEN_ORDER = {"ws": 0, "osc": 1, "lsl": 2, "jsonl": 3}
"""Servers bind first and files are created last, so a port in use truncates no file."""


def open_stream(target: StreamTarget, meta: StreamMeta) -> StreamSink:
    """Open one outlet.

    Raises:
        StreamError: it cannot be opened (the message names the target).
    """
    if target.scheme == "lsl":
        from liveaffect.runtime.streams.lsl import LslSink

        return LslSink(meta, target.name)
    if target.scheme == "osc":
        from liveaffect.runtime.streams.osc import OscSink

        return OscSink(meta, target.host, target.port)
    if target.scheme == "ws":
        from liveaffect.runtime.streams.websocket import WebSocketSink

        return WebSocketSink(meta, target.host, target.port)
    if target.scheme == "jsonl":
        from liveaffect.runtime.streams.jsonl import JsonlSink

        return JsonlSink(meta, target.path)
    raise StreamError(f"unknown stream target {target.text!r}")


def open_streams(targets, meta: StreamMeta) -> list[StreamSink]:
    """Open every outlet, in the order given; on any failure close those opened and raise.

    Raises:
        StreamError: the first outlet that cannot be opened.
    """
    opened: dict[int, StreamSink] = {}
    order = sorted(range(len(targets)), key=lambda i: _OPEN_ORDER.get(targets[i].scheme, 9))
    try:
        for i in order:
            opened[i] = open_stream(targets[i], meta)
    except BaseException:
        for sink in opened.values():
            sink.close()
        raise
    return [opened[i] for i in range(len(targets))]
