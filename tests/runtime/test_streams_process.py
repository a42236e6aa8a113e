"""The streaming process (the outlets in a child process) and the OSC bundle encoding."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from pythonosc.osc_bundle import OscBundle

from liveaffect.runtime.live import close_sinks, run_loop
from liveaffect.runtime.sinks import SinkError
from liveaffect.runtime.streams import StreamError, StreamMeta, parse_targets
from liveaffect.runtime.streams.osc import MAX_DATAGRAM, frame_bundles
from liveaffect.runtime.streams.process import StreamProcess, pack_frame, unpack_frame
from liveaffect.runtime.streams.records import FramePacket
from liveaffect.types import AffectPrediction, Detection, FaceResult, Frame, FrameResult

IMAGE = np.zeros((200, 300, 3), np.uint8)
EXPR = np.array([0.05, 0.05, 0.05, 0.05, 0.6, 0.1, 0.05, 0.05], np.float32)


def face(track_id=7, au=True, x1=10.0):
    pred = AffectPrediction(
        expr_probs=EXPR,
        va=np.array([0.25, -0.5], np.float32),
        au_probs=np.linspace(0.05, 0.95, 12).astype(np.float32) if au else None,
    )
    return FaceResult(track_id, Detection(xyxy=(x1, 20.0, 110.0, 140.0), score=0.875), pred)


def frame(index, faces=()):
    """Read at monotonic 1000 + index ms; 40 ms a frame into its video."""
    return FrameResult(index, 40.0 * index, tuple(faces), read_at_ms=1000.0 + index)


def alive(pid):
    """Whether a process runs (a zombie, dead but not yet reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def lines_of(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def streams(*targets, **kwargs):
    return StreamProcess(parse_targets(list(targets)), StreamMeta(), **kwargs)


# ------------------------------------------------------------------ the process
def test_a_packed_frame_gives_the_outlets_the_same_json():
    meta = StreamMeta(clock_offset_s=2.5)
    original = frame(12, [face(3, x1=-4.0), face(4, au=False)])
    copy, size = unpack_frame(pack_frame(original, (300, 200)))
    assert size == (300, 200)
    assert (copy.timestamp_ms, copy.read_at_ms) == (480.0, 1012.0)
    assert FramePacket(copy, meta, size).json_text == FramePacket(original, meta, size).json_text
    assert copy.faces[1].prediction.au_probs is None


def test_every_frame_reaches_every_outlet_in_order_from_another_process(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    sender = streams(f"jsonl:{a}", f"jsonl:{b}")
    assert sender.outlets == [f"jsonl:{a}", f"jsonl:{b}"]
    assert sender.pid != os.getpid()
    for i in range(200):
        sender.write(IMAGE, frame(i, [face()]))
    sender.close()  # sends what is still queued first
    sender.close()  # safe twice
    for path in (a, b):
        records = lines_of(path)
        assert [r["frame"] for r in records] == list(range(200))
        assert records[0]["faces"][0]["box"] == [10.0, 20.0, 110.0, 140.0]


def test_flush_waits_until_every_frame_was_sent(tmp_path):
    path = tmp_path / "faces.jsonl"
    sender = streams(f"jsonl:{path}")
    for i in range(50):
        sender.write(IMAGE, frame(i, [face()]))
    sender.flush()
    assert len(lines_of(path)) == 50  # while the outlet is still open
    sender.close()


@pytest.mark.parametrize("priority", ["low", "normal"])
def test_the_process_runs_at_the_priority_asked(tmp_path, priority):
    sender = streams(f"jsonl:{tmp_path / 'x.jsonl'}", priority=priority)
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    try:
        nice = os.getpriority(os.PRIO_PROCESS, sender.pid)
        policy = os.sched_getscheduler(sender.pid) if hasattr(os, "SCHED_BATCH") else None
    finally:
        sender.close()
    if priority == "low":
        assert nice == min(19, ours + 19)
        assert policy in (None, os.SCHED_BATCH)
    else:
        assert nice == ours and policy in (None, os.sched_getscheduler(0))


def test_an_unknown_priority_is_refused():
    with pytest.raises(ValueError, match="low, normal"):
        streams("jsonl:-", priority="high")


def test_a_stopped_process_makes_write_wait_instead_of_dropping(tmp_path):
    path = tmp_path / "faces.jsonl"
    sender = streams(f"jsonl:{path}")
    big = [face(i) for i in range(40)]  # a few KB per frame: the socket fills quickly
    os.kill(sender.pid, signal.SIGSTOP)
    written = []

    def writer():
        for i in range(300):
            sender.write(IMAGE, frame(i, big))
            written.append(i)

    thread = threading.Thread(target=writer, daemon=True)
    try:
        thread.start()
        time.sleep(1.0)
        assert thread.is_alive() and len(written) < 300  # waiting for the stopped process
    finally:
        os.kill(sender.pid, signal.SIGCONT)
    thread.join(30)
    sender.close()
    assert [r["frame"] for r in lines_of(path)] == list(range(300))


def test_an_outlet_error_is_raised_by_the_next_write_and_stops_sending():
    sender = streams("jsonl:/dev/full")  # every write fails: no space left on device
    with pytest.raises(SinkError, match="disk full: cannot write /dev/full") as caught:
        for i in range(1000):
            sender.write(IMAGE, frame(i))
            time.sleep(0.002)
    assert caught.value.exit_status == 1  # the run's error, not a bad option
    sender.close()  # reported once


def test_an_outlet_error_on_the_last_frames_is_raised_by_close():
    sender = streams("jsonl:/dev/full")
    sender.write(IMAGE, frame(0))
    with pytest.raises(SinkError, match="No space left"):
        sender.close()
    sender.close()


class _Source:
    error = None

    def __init__(self, n):
        self.n = n

    def __iter__(self):
        for i in range(self.n):
            yield Frame(index=i, timestamp_ms=1000.0 + i, image_bgr=IMAGE)


class _Pipeline:
    def process(self, f):
        return FrameResult(index=f.index, timestamp_ms=f.timestamp_ms, faces=(face(),))


def test_an_outlet_error_ends_the_live_loop_with_the_error_naming_the_file():
    sender = streams("jsonl:/dev/full")
    summary = run_loop(_Source(100_000), _Pipeline(), [sender])
    assert summary.stopped == "error"
    assert summary.error.startswith("disk full: cannot write /dev/full (No space left")
    sender.close()


def test_an_outlet_error_on_the_last_frames_still_gives_the_summary():
    sender = streams("jsonl:/dev/full")
    summary = run_loop(_Source(1), _Pipeline(), [sender])
    assert summary.stopped == "end"
    summary = close_sinks([sender], summary)  # the error arrives when the outlets close
    assert summary.stopped == "error" and "cannot write /dev/full" in summary.error


def test_a_killed_process_ends_the_live_loop_with_an_error_and_keeps_what_was_sent(tmp_path):
    path = tmp_path / "faces.jsonl"
    sender = streams(f"jsonl:{path}")
    for i in range(5):
        sender.write(IMAGE, frame(i))
    sender.flush()
    os.kill(sender.pid, signal.SIGKILL)
    summary = run_loop(_Source(100_000), _Pipeline(), [sender])
    assert summary.stopped == "error" and "streaming process ended" in summary.error
    assert "exit code -9" in summary.error
    sender.close()
    assert [r["frame"] for r in lines_of(path)] == list(range(5))


def test_an_outlet_that_cannot_open_is_a_stream_error_from_the_constructor(tmp_path):
    with pytest.raises(StreamError, match="cannot write"):
        streams(f"jsonl:{tmp_path / 'no' / 'such' / 'folder.jsonl'}")


def test_the_process_ignores_ctrl_c_and_ends_when_the_app_dies(tmp_path):
    """Ctrl-C reaches the whole process group: the child must leave the stopping to the app;
    an app that dies without closing must not leave the child behind."""
    path = tmp_path / "faces.jsonl"
    script = (
        "import sys, time\n"
        "from liveaffect.runtime.streams import StreamMeta, parse_targets\n"
        "from liveaffect.runtime.streams.process import StreamProcess\n"
        f"s = StreamProcess(parse_targets(['jsonl:{path}']), StreamMeta())\n"
        "print(s.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    app = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        child = int(app.stdout.readline())
        os.kill(child, signal.SIGINT)
        time.sleep(0.5)
        assert alive(child)
        app.kill()
        app.wait(10)
        deadline = time.monotonic() + 10
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(child), "the streaming process outlived the app"
    finally:
        app.kill()


# ------------------------------------------------------------------ OSC bundles
def _decode(datagram):
    bundle = OscBundle(datagram)
    return [(m.address, list(m.params)) for m in bundle], bundle


def test_osc_frame_is_one_bundle_that_python_osc_decodes():
    packet = FramePacket(frame(12, [face(3), face(4, au=False)]), StreamMeta(clock_offset_s=5.0))
    (datagram,) = frame_bundles(packet, limit=MAX_DATAGRAM)
    messages, bundle = _decode(datagram)
    assert [a for a, _ in messages] == [
        "/liveaffect/frame",
        *(f"/liveaffect/face/3/{s}" for s in ("box", "expr", "va", "au")),
        *(f"/liveaffect/face/4/{s}" for s in ("box", "expr", "va")),
    ]
    assert messages[0][1] == [12, packet.t, 2] and packet.t == pytest.approx(6.012)
    assert bundle.content(0).dgram.startswith(b"/liveaffect/frame\0\0\0,idi\0\0\0")  # float64 t
    assert np.allclose(messages[1][1], [10, 20, 110, 140, 0.875])
    assert np.allclose(messages[2][1], EXPR)
    assert np.allclose(messages[3][1], [0.25, -0.5])
    assert len(messages[4][1]) == 12


def test_osc_many_faces_are_split_between_faces_under_the_size_limit():
    faces = [face(i) for i in range(60)]
    datagrams = frame_bundles(FramePacket(frame(0, faces), StreamMeta()), limit=2048)
    assert len(datagrams) > 1 and all(len(d) <= 2048 for d in datagrams)
    decoded = [_decode(d)[0] for d in datagrams]
    addresses = [a for messages in decoded for a, _ in messages]
    expected = ["/liveaffect/frame"] + [
        f"/liveaffect/face/{i}/{s}" for i in range(60) for s in ("box", "expr", "va", "au")
    ]
    assert addresses == expected
    for messages in decoded[1:]:  # a face's four messages are never split
        assert messages[0][0].endswith("/box") and len(messages) % 4 == 0


def test_the_outlets_warnings_are_warning_lines_on_stderr(capfd):
    """The streaming process's warnings read like the app's (Python's fallback printed the
    bare message, which a script looking for 'warning:' missed)."""
    sender = streams("osc://255.255.255.255:9000")  # a broadcast without SO_BROADCAST
    for i in range(3):
        sender.write(IMAGE, frame(i, [face()]))
    sender.close()
    err = capfd.readouterr().err.splitlines()
    assert "warning: osc://255.255.255.255:9000: sending failed (" in err[0]
    assert err[1] == "warning: osc://255.255.255.255:9000: 3 bundles could not be sent"
