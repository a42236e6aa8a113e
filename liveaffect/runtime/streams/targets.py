"""Parse ``--stream`` targets: ``lsl``, ``lsl:NAME``, ``osc://HOST:PORT``, ``ws://HOST:PORT``,
``jsonl:PATH`` and ``jsonl:-`` (standard output).

Parsing is pure (no socket, no file): it runs with the other option checks, before a camera
opens. Binding, name resolution and opening files happen when the outlets are opened
(:func:`liveaffect.runtime.streams.open_streams`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

SCHEMES = ("lsl", "osc", "ws", "jsonl")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_LSL_NAME = "liveaffect"
FORMS = "lsl, lsl:NAME, osc://HOST:PORT, ws://HOST:PORT, jsonl:PATH or jsonl:-"
_HOST = re.compile(r"^[A-Za-z0-9._-]+$")


@dataclass(frozen=True)
class StreamTarget:
    """One parsed ``--stream`` value.

    Attributes:
        scheme: ``"lsl"``, ``"osc"``, ``"ws"`` or ``"jsonl"``.
        text: what the user typed (for messages).
        name: lsl: the stream name.
        host: osc: where to send; ws: the address to bind (127.0.0.1 unless given).
        port: osc/ws port (ws: 0 picks a free one).
        path: jsonl: the file, or None for standard output.
    """

    scheme: str
    text: str
    name: str = DEFAULT_LSL_NAME
    host: str = DEFAULT_HOST
    port: int = 0
    path: Path | None = None

    @property
    def to_stdout(self) -> bool:
        """True for ``jsonl:-``."""
        return self.scheme == "jsonl" and self.path is None


def parse_target(text: str) -> StreamTarget:
    """Parse one ``--stream`` value.

    Raises:
        ValueError: unknown scheme, missing or bad port, bad host or name; the message is
            one sentence naming the value.
    """
    raw = str(text).strip()
    scheme, sep, rest = raw.partition(":")
    scheme = scheme.lower()
    if scheme == "lsl":
        return _lsl(raw, rest if sep else "")
    if scheme == "jsonl":
        if not rest:
            raise ValueError(f"--stream {raw!r}: give a file (jsonl:PATH) or jsonl:- for stdout")
        return StreamTarget("jsonl", raw, path=None if rest == "-" else Path(rest).expanduser())
    if scheme in ("osc", "ws"):
        if not rest.startswith("//"):
            raise ValueError(f"--stream {raw!r}: write {scheme}://HOST:PORT")
        host, port = _host_port(raw, rest[2:], allow_zero=scheme == "ws")
        return StreamTarget(scheme, raw, host=host, port=port)
    raise ValueError(f"--stream {raw!r}: unknown target; use one of: {FORMS}")


def _lsl(raw: str, name: str) -> StreamTarget:
    name = name.strip() or DEFAULT_LSL_NAME
    if not _HOST.match(name):
        raise ValueError(f"--stream {raw!r}: an LSL name uses letters, digits, '.', '_' or '-'")
    return StreamTarget("lsl", raw, name=name)


def _host_port(raw: str, netloc: str, allow_zero: bool) -> tuple[str, int]:
    netloc = netloc.rstrip("/")
    if netloc.isdigit():  # ws://8765: only a port
        host, port_text = "", netloc
    elif netloc.startswith("["):  # [::1]:9000
        host, _, port_text = netloc[1:].partition("]")
        port_text = port_text.removeprefix(":")
    else:
        host, _, port_text = netloc.rpartition(":")
    if not port_text.isdigit():
        raise ValueError(f"--stream {raw!r}: give a port, e.g. {raw.split(':')[0]}://:9000")
    port = int(port_text)
    low = 0 if allow_zero else 1
    if not low <= port <= 65535:
        raise ValueError(f"--stream {raw!r}: port must be in {low}..65535, got {port}")
    host = host or DEFAULT_HOST
    if not (_HOST.match(host) or ":" in host):
        raise ValueError(f"--stream {raw!r}: bad host {host!r}")
    return host, port


def host_port(host: str, port: int) -> str:
    """``HOST:PORT`` as a URL writes it: an IPv6 address in brackets (``[::1]:9000``)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_targets(texts) -> tuple[StreamTarget, ...]:
    """Parse every ``--stream`` value; at most one may write to standard output.

    Raises:
        ValueError: as :func:`parse_target`, or two ``jsonl:-``, or the same LSL name or
            server address twice.
    """
    targets = tuple(parse_target(t) for t in texts or ())
    keys = [_identity(t) for t in targets]
    for i, key in enumerate(keys):
        if key is not None and key in keys[:i]:
            raise ValueError(f"--stream {targets[i].text!r} is given twice")
    return targets


def _identity(target: StreamTarget):
    if target.scheme == "lsl":
        return ("lsl", target.name)
    if target.scheme == "ws" and target.port:
        return ("ws", target.host, target.port)
    if target.scheme == "jsonl":
        return ("jsonl", str(target.path) if target.path else "-")
    return None
