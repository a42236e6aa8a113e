"""Stream outlets with the real libraries on loopback: --stream parsing, JSON records,
JSON lines, a pylsl inlet and a python-osc server."""

from __future__ import annotations

import errno
import json
import os
import pickle
import threading
import time
import uuid

import numpy as np
import pytest

from liveaffect.labels import AU_COLUMNS, EXPRESSIONS
from liveaffect.runtime.sinks import SinkError
from liveaffect.runtime.streams import StreamMeta, StreamTarget, parse_target, parse_targets
from liveaffect.runtime.streams.jsonl import JsonlSink
from liveaffect.runtime.streams.lsl import SLOT_FIELDS, LslSink, SlotMap
from liveaffect.runtime.streams.meta import lsl_clock_offset_s
from liveaffect.runtime.streams.osc import OscSink
from liveaffect.runtime.streams.records import frame_record
from liveaffect.types import AffectPrediction, Detection, FaceResult, FrameResult

EXPR = np.array([0.05, 0.05, 0.05, 0.05, 0.6, 0.1, 0.05, 0.05], np.float32)
AU = np.linspace(0.05, 0.95, 12).astype(np.float32)
IMAGE = np.zeros((200, 300, 3), np.uint8)


def face(track_id=7, box=(10.0, 20.0, 110.0, 140.0), au=True, va=True):
    pred = AffectPrediction(
        expr_probs=EXPR,
        va=np.array([0.25, -0.5], np.float32) if va else None,
        au_probs=AU if au else None,
    )
    return FaceResult(track_id, Detection(xyxy=box, score=0.875), pred)


def frame(index, faces=(), read_at_ms=None):
    """A frame read at ``read_at_ms`` (monotonic ms, default now), a camera's: Unix time."""
    stamp = time.monotonic() * 1000.0 if read_at_ms is None else read_at_ms
    return FrameResult(index, time.time() * 1000.0, tuple(faces), read_at_ms=stamp)


# ------------------------------------------------------------------ targets
@pytest.mark.parametrize(
    "text, expected",
    [
        ("lsl", StreamTarget("lsl", "lsl")),
        ("lsl:Lab_A", StreamTarget("lsl", "lsl:Lab_A", name="Lab_A")),
        ("osc://:9000", StreamTarget("osc", "osc://:9000", port=9000)),
        (
            "osc://10.0.0.5:57120",
            StreamTarget("osc", "osc://10.0.0.5:57120", "liveaffect", "10.0.0.5", 57120),
        ),
        ("ws://0.0.0.0:8765", StreamTarget("ws", "ws://0.0.0.0:8765", host="0.0.0.0", port=8765)),
        ("ws://8765", StreamTarget("ws", "ws://8765", port=8765)),
        ("ws://localhost:0", StreamTarget("ws", "ws://localhost:0", host="localhost")),
        ("jsonl:-", StreamTarget("jsonl", "jsonl:-")),
    ],
)
def test_parse_target_forms(text, expected):
    assert parse_target(text) == expected


def test_jsonl_target_paths_and_stdout(tmp_path):
    assert parse_target("jsonl:-").to_stdout
    target = parse_target(f"jsonl:{tmp_path}/x.jsonl")
    assert target.path == tmp_path / "x.jsonl" and not target.to_stdout


@pytest.mark.parametrize(
    "text, message",
    [
        ("udp://:9000", "unknown target"),
        ("mqtt", "unknown target"),
        ("osc://localhost", "give a port"),
        ("osc://:0", "port must be in 1..65535"),
        ("ws://:70000", "port must be in 0..65535"),
        ("ws:8765", "ws://HOST:PORT"),
        ("osc://bad host!:9000", "bad host"),
        ("jsonl:", "jsonl:-"),
        ("lsl:two words", "LSL name"),
    ],
)
def test_parse_target_errors_name_the_value(text, message):
    with pytest.raises(ValueError, match=message) as info:
        parse_target(text)
    assert repr(text) in str(info.value)


def test_parse_targets_rejects_duplicates():
    assert len(parse_targets(["lsl", "lsl:other", "ws://:1234", "jsonl:-"])) == 4
    for pair in (["lsl", "lsl:liveaffect"], ["jsonl:-", "jsonl:-"], ["ws://:80", "ws://80"]):
        with pytest.raises(ValueError, match="given twice"):
            parse_targets(pair)


# ------------------------------------------------------------------ records / JSON lines
def test_frame_record_schema_clips_boxes_and_marks_untrained_heads():
    meta = StreamMeta(clock_offset_s=100.0)
    result = frame(3, [face(box=(-5.0, 20.0, 400.0, 140.0)), face(8, au=False, va=False)], 2500.0)
    record = frame_record(result, meta, (300, 200))
    assert record["frame"] == 3 and record["t"] == pytest.approx(102.5)  # read at 2.5 s
    first, second = record["faces"]
    assert set(first) == {
        "id", "box", "score", "expression", "probs", "valence", "arousal", "aus", "active_aus",
    }  # fmt: skip
    assert first["id"] == 7 and first["box"] == [0.0, 20.0, 300.0, 140.0]
    assert first["expression"] == "Happiness" and list(first["probs"]) == list(EXPRESSIONS)
    assert (first["valence"], first["arousal"]) == (0.25, -0.5)
    assert list(first["aus"]) == list(AU_COLUMNS)
    assert first["active_aus"] == [a for a, p in zip(AU_COLUMNS, AU, strict=True) if p >= 0.5]
    assert second["aus"] is None and second["active_aus"] is None and second["valence"] is None
    json.dumps(record, allow_nan=False)  # valid JSON


def test_jsonl_file_one_flushed_line_per_frame_and_close_twice(tmp_path):
    path = tmp_path / "faces.jsonl"
    sink = JsonlSink(StreamMeta(), path)
    sink.write(IMAGE, frame(0, [face()]))
    assert json.loads(path.read_text())["faces"][0]["id"] == 7  # flushed before close
    sink.write(IMAGE, frame(1))
    sink.close()
    sink.close()
    sink.write(IMAGE, frame(2))  # ignored after close
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["frame"] for r in lines] == [0, 1] and lines[1]["faces"] == []


def test_jsonl_file_is_emptied_by_the_first_frame_not_when_opened(tmp_path):
    path = tmp_path / "faces.jsonl"
    path.write_text("an earlier run\n")
    JsonlSink(StreamMeta(), path).close()  # the start failed after the outlets opened
    assert path.read_text() == "an earlier run\n"
    with JsonlSink(StreamMeta(), path) as sink:
        sink.write(IMAGE, frame(0, [face()]))
        sink.write(IMAGE, frame(1))
    assert [json.loads(line)["frame"] for line in path.read_text().splitlines()] == [0, 1]


class _FullDisk:
    """A file that takes ``room`` more bytes, then fails as a full disk does (part of a
    write, then ENOSPC)."""

    def __init__(self, file, room):
        self.file, self.room = file, room

    def write(self, data):
        if self.room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = self.file.write(bytes(data[: self.room]))
        self.room -= n
        return n

    def __getattr__(self, name):
        return getattr(self.file, name)


def test_a_full_disk_keeps_the_whole_lines_and_names_the_file(tmp_path):
    path = tmp_path / "faces.jsonl"
    sink = JsonlSink(StreamMeta(), path)
    sink.write(IMAGE, frame(0, [face()]))
    sink.write(IMAGE, frame(1, [face()]))
    sink._file = _FullDisk(sink._file, room=100)  # the third line fits only in part
    with pytest.raises(SinkError) as caught:
        sink.write(IMAGE, frame(2, [face()]))
    assert caught.value.exit_status == 1
    assert str(caught.value) == (
        f"disk full: cannot write {path} (No space left on device); "
        "its 2 lines written before are kept"
    )
    assert pickle.loads(pickle.dumps(caught.value)).exit_status == 1  # sent by the process
    assert [json.loads(line)["frame"] for line in path.read_text().splitlines()] == [0, 1]
    assert path.read_text().endswith("\n")  # no torn line
    assert sink.closed
    sink.write(IMAGE, frame(3))  # ignored once failed
    sink.close()


def test_a_named_pipe_without_a_reader_is_a_stream_error_not_a_hang(tmp_path):
    from liveaffect.runtime.streams import StreamError

    fifo = tmp_path / "faces.fifo"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(StreamError, match="a named pipe with no reader"):
        JsonlSink(StreamMeta(), fifo)  # it waited for a reader for good
    assert time.monotonic() - started < 5
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # with one, lines go through
    try:
        with JsonlSink(StreamMeta(), fifo) as sink:
            sink.write(IMAGE, frame(4))
        assert json.loads(os.read(reader, 65536))["frame"] == 4
    finally:
        os.close(reader)


def test_jsonl_stdout(capsys):
    with JsonlSink(StreamMeta(), None) as sink:
        sink.write(IMAGE, frame(5, [face()]))
    assert json.loads(capsys.readouterr().out)["frame"] == 5


# ------------------------------------------------------------------ LSL
def test_slots_stay_with_their_face_and_are_reused():
    slots = SlotMap(2)
    assert slots.assign([5, 9, 11]) == {5: 0, 9: 1}  # the third face does not fit
    assert slots.assign([9, 11]) == {9: 1, 11: 0}
    assert slots.assign([]) == {}


def test_lsl_inlet_reads_labels_metadata_and_capture_timestamps():
    import pylsl

    name = f"liveaffect-test-{uuid.uuid4().hex[:8]}"
    meta = StreamMeta(
        "tiny-model", "sha256:abc", faces=2, clock_offset_s=lsl_clock_offset_s(),
        weak_aus=("AU10", "AU26"),
    )  # fmt: skip
    with LslSink(meta, name) as sink:
        found = pylsl.resolve_byprop("name", name, timeout=10)
        assert len(found) == 1 and found[0].type() == "Affect"
        inlet = pylsl.StreamInlet(found[0])
        info = inlet.info(timeout=10)
        assert info.channel_count() == 2 * len(SLOT_FIELDS) == 56
        labels = info.get_channel_labels()
        assert labels[:3] == ["face1_face_id", "face1_x1", "face1_y1"]
        assert labels[28:30] == ["face2_face_id", "face2_x1"] and labels[-1] == "face2_AU26"
        units = info.get_channel_units()
        assert units[1] == "pixels" and units[6] == "probability"
        model = info.desc().child("model")
        assert model.child_value("name") == "tiny-model"
        assert model.child_value("version") == "sha256:abc"
        assert info.desc().child_value("weak_aus") == "AU10,AU26"
        inlet.open_stream(timeout=10)
        captured = []
        for i in range(5):
            captured.append(time.monotonic() * 1000.0)
            time.sleep(0.02)  # sent 20 ms after capture
            faces = [face(4)] if i % 2 == 0 else [face(4), face(6, au=False)]
            sink.write(IMAGE, frame(i, faces, captured[-1]))
        samples, stamps = [], []
        deadline = time.monotonic() + 10
        while len(samples) < 5 and time.monotonic() < deadline:
            chunk, times = inlet.pull_chunk(timeout=1.0)
            samples += chunk
            stamps += times
    assert len(samples) == 5 and all(len(s) == 56 for s in samples)
    expected = [meta.capture_time_s(c) for c in captured]
    assert np.all(np.diff(stamps) > 0)
    assert np.allclose(stamps, expected, atol=1e-4)  # capture time, not the send time
    first, second = np.asarray(samples[0]), np.asarray(samples[1])
    assert first[0] == 4 and first[5] == pytest.approx(0.875)
    assert np.allclose(first[6:14], EXPR) and np.all(np.isnan(first[28:]))  # empty slot
    assert second[28] == 6 and np.all(np.isnan(second[28 + 16 :]))  # untrained AU head


def test_lsl_close_twice_and_write_after_close():
    sink = LslSink(StreamMeta(faces=1), f"liveaffect-test-{uuid.uuid4().hex[:8]}")
    sink.close()
    sink.close()
    sink.write(IMAGE, frame(0, [face()]))


# ------------------------------------------------------------------ OSC
def test_osc_server_receives_frame_and_face_messages():
    from pythonosc.dispatcher import Dispatcher
    from pythonosc.osc_server import ThreadingOSCUDPServer

    received: list[tuple] = []
    dispatcher = Dispatcher()
    dispatcher.set_default_handler(lambda address, *args: received.append((address, args)))
    server = ThreadingOSCUDPServer(("127.0.0.1", 0), dispatcher)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        meta = StreamMeta(clock_offset_s=1000.0)
        with OscSink(meta, "127.0.0.1", server.server_address[1]) as sink:
            sink.write(IMAGE, frame(0, [face(3), face(4, au=False)], 123456.789))
            sink.write(IMAGE, frame(1, [], 1040.0))
        deadline = time.monotonic() + 10
        while len(received) < 9 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        server.shutdown()
        server.server_close()
    got = dict(received)
    assert len(received) == 9, received
    frames = [args for address, args in received if address == "/liveaffect/frame"]
    assert sorted(frames) == [(0, 1123.456789, 2), (1, 1001.04, 0)]  # float64 time
    assert np.allclose(got["/liveaffect/face/3/box"], [10, 20, 110, 140, 0.875])
    assert np.allclose(got["/liveaffect/face/3/expr"], EXPR)
    assert np.allclose(got["/liveaffect/face/3/va"], [0.25, -0.5])
    assert np.allclose(got["/liveaffect/face/3/au"], AU)
    assert "/liveaffect/face/4/va" in got and "/liveaffect/face/4/au" not in got


def test_osc_ipv6_receiver_is_named_with_brackets():
    with OscSink(StreamMeta(), "::1", 9000) as sink:
        assert sink.describe() == "osc://[::1]:9000"  # as --stream takes it back


def test_osc_bad_host_is_a_clean_error():
    from liveaffect.runtime.streams import StreamError

    with pytest.raises(StreamError, match="cannot resolve host"):
        OscSink(StreamMeta(), "no-such-host.invalid", 9000)


def test_outlets_name_classes_and_aus_as_the_model_card_does(tmp_path):
    """The stream's labels come from the card next to the model, not from labels.py: a
    card with other class names (e.g. a retrained model) renames the JSON keys and the
    LSL channels (and a card with fewer AUs would give fewer channels)."""
    import json

    from liveaffect.bundle import CARD_FILE, ModelCard
    from liveaffect.runtime.streams.lsl import sample_row, slot_fields
    from liveaffect.runtime.streams.records import FramePacket

    names = ["calm", "angry", "disgusted", "afraid", "happy", "sad", "surprised", "other"]
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "model.keras").write_bytes(b"not read: the card is enough")
    card = ModelCard(name="renamed", expressions=names)
    card.save(bundle / CARD_FILE)
    meta = StreamMeta.from_model(bundle, faces=1)
    assert meta.expressions == tuple(names) and meta.aus[0] == "AU01"
    fields = slot_fields(meta)
    assert fields[6:8] == ("p_calm", "p_angry") and fields[-1] == "AU26"
    result = frame(0, [face(7)])
    record = json.loads(FramePacket(result, meta).json_text)
    assert list(record["faces"][0]["probs"])[:2] == ["calm", "angry"]
    row = sample_row(result, {7: 0}, meta, None)
    assert row.shape == (len(fields),) and row[0] == 7
