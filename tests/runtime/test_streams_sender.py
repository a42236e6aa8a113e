"""The background sender (one thread feeds every outlet) and the OSC bundle encoding."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
from pythonosc.osc_bundle import OscBundle

from liveaffect.runtime.live import run_loop
from liveaffect.runtime.streams import StreamMeta
from liveaffect.runtime.streams import records as records_module
from liveaffect.runtime.streams.jsonl import JsonlSink
from liveaffect.runtime.streams.osc import MAX_DATAGRAM, frame_bundles
from liveaffect.runtime.streams.records import FramePacket
from liveaffect.runtime.streams.sender import StreamSender
from liveaffect.types import AffectPrediction, Detection, FaceResult, Frame, FrameResult

IMAGE = np.zeros((200, 300, 3), np.uint8)
EXPR = np.array([0.05, 0.05, 0.05, 0.05, 0.6, 0.1, 0.05, 0.05], np.float32)


def face(track_id=7, au=True):
    pred = AffectPrediction(
        expr_probs=EXPR,
        va=np.array([0.25, -0.5], np.float32),
        au_probs=np.linspace(0.05, 0.95, 12).astype(np.float32) if au else None,
    )
    return FaceResult(track_id, Detection(xyxy=(10.0, 20.0, 110.0, 140.0), score=0.875), pred)


def frame(index, faces=()):
    return FrameResult(index=index, timestamp_ms=1000.0 + index, faces=tuple(faces))


class Recorder:
    """An outlet that keeps every packet it is sent (optionally slowly, or failing)."""

    def __init__(self, delay_s=0.0, fail_at=None):
        self.packets, self.delay_s, self.fail_at = [], delay_s, fail_at
        self.thread_names = set()

    def send(self, packet):
        if self.fail_at is not None and packet.result.index == self.fail_at:
            raise OSError(28, "No space left on device")
        time.sleep(self.delay_s)
        self.thread_names.add(threading.current_thread().name)
        self.packets.append(packet)

    def indices(self):
        return [p.result.index for p in self.packets]


# ------------------------------------------------------------------ sender
def test_every_frame_reaches_every_outlet_in_order_from_the_thread(tmp_path, monkeypatch):
    built = []
    original = records_module.frame_record
    monkeypatch.setattr(
        records_module, "frame_record", lambda *a: built.append(a[0].index) or original(*a)
    )
    meta = StreamMeta()
    first, second = Recorder(), Recorder(delay_s=0.001)
    jsonl = JsonlSink(meta, tmp_path / "faces.jsonl")
    sender = StreamSender([first, jsonl, second], meta, queue_frames=4)
    for i in range(200):
        sender.write(IMAGE, frame(i, [face()]))
    sender.close()
    jsonl.close()
    assert first.indices() == second.indices() == list(range(200))
    assert first.thread_names == {"liveaffect-streams"}
    # one packet per frame, shared: the JSON is built once per frame, not once per outlet
    assert all(a is b for a, b in zip(first.packets, second.packets, strict=True))
    assert built == list(range(200))
    lines = (tmp_path / "faces.jsonl").read_text().splitlines()
    assert [json.loads(line)["frame"] for line in lines] == list(range(200))
    assert json.loads(lines[0])["faces"][0]["box"] == [10.0, 20.0, 110.0, 140.0]  # clipped


def test_close_sends_what_is_still_queued():
    slow = Recorder(delay_s=0.01)
    sender = StreamSender([slow], StreamMeta(), queue_frames=64)
    for i in range(30):
        sender.write(IMAGE, frame(i))
    assert len(slow.packets) < 30  # still queued when the loop is done
    sender.close()
    assert slow.indices() == list(range(30))
    sender.close()  # safe twice


def test_a_full_queue_makes_write_wait_instead_of_dropping():
    slow = Recorder(delay_s=0.02)
    sender = StreamSender([slow], StreamMeta(), queue_frames=2)
    t0 = time.perf_counter()
    for i in range(10):
        sender.write(IMAGE, frame(i))
    waited = time.perf_counter() - t0
    sender.close()
    assert waited > 0.1  # at least 7 frames had to wait for the 20 ms sends
    assert slow.indices() == list(range(10))


def test_an_outlet_error_is_raised_by_the_next_write_and_stops_sending():
    failing, other = Recorder(fail_at=3), Recorder()
    sender = StreamSender([other, failing], StreamMeta(), queue_frames=1)
    with pytest.raises(OSError, match="No space left"):
        for i in range(100):
            sender.write(IMAGE, frame(i))
            time.sleep(0.002)
    sender.close()  # reported once
    assert failing.indices() == [0, 1, 2]
    assert other.indices()[:4] == [0, 1, 2, 3] and len(other.indices()) <= 5


def test_an_outlet_error_on_the_last_frames_is_raised_by_close():
    sender = StreamSender([Recorder(fail_at=1)], StreamMeta())
    sender.write(IMAGE, frame(0))
    sender.write(IMAGE, frame(1))
    with pytest.raises(OSError, match="No space left"):
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


def test_an_outlet_error_still_ends_the_live_loop():
    failing = Recorder(fail_at=5)
    sender = StreamSender([failing], StreamMeta(), queue_frames=1)
    with pytest.raises(OSError, match="No space left"):
        run_loop(_Source(10_000), _Pipeline(), [sender])
    sender.close()
    assert failing.indices() == [0, 1, 2, 3, 4]


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
