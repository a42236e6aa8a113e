"""``live --stream``: bad targets and busy ports are one ``error:`` line before any capture or
file; a real run feeds every outlet; SIGTERM closes them all cleanly."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import cv2
import numpy as np
import pylsl
import pytest
from conftest import shared_path

from liveaffect.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fake_bundle_dir(tmp_path_factory) -> Path:
    """Looks like a bundle; a stream error must come before the model loads."""
    root = tmp_path_factory.mktemp("fake_bundle")
    (root / "model.keras").write_bytes(b"never loaded")
    return root


@pytest.fixture
def busy_port():
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    yield blocker.getsockname()[1]
    blocker.close()


def one_error_line(capsys, argv) -> str:
    code = main(["live", *argv])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize(
    "target, needle",
    [
        ("mqtt://:1883", "unknown target"),
        ("osc://:99999", "port must be in 1..65535"),
        ("osc://no-such-host.invalid:9000", "cannot resolve host"),
        ("ws://192.0.2.1:0", "not an address of this machine"),
        ("jsonl:{tmp}/no/dir/x.jsonl", "does not exist"),
        ("jsonl:{video}", "overwrite the input video"),
        ("jsonl:{bundle}/model.keras", "overwrite the model's file"),
    ],
)
def test_bad_targets_are_one_line(capsys, tmp_path, video, fake_bundle_dir, target, needle):
    target = target.format(tmp=tmp_path, video=video, bundle=fake_bundle_dir)
    argv = [str(video), "--no-display", "--model", str(fake_bundle_dir), "--stream", target]
    assert needle in one_error_line(capsys, argv)
    assert sorted(p.name for p in fake_bundle_dir.iterdir()) == ["model.keras"]


def test_one_jsonl_file_spelled_two_ways_is_one_line(capsys, tmp_path, video, fake_bundle_dir):
    same = [f"jsonl:{tmp_path}/x.jsonl", f"jsonl:{tmp_path}/sub/../x.jsonl"]
    (tmp_path / "sub").mkdir()
    argv = [str(video), "--no-display", "--model", str(fake_bundle_dir)]
    line = one_error_line(capsys, [*argv, "--stream", same[0], "--stream", same[1]])
    assert "names the file of another jsonl target" in line
    assert not (tmp_path / "x.jsonl").exists()


@pytest.mark.parametrize("n", ["0", "65"])
def test_stream_faces_must_be_1_to_64(capsys, video, fake_bundle_dir, n):
    # 100000 used to make an LSL outlet of 2.8 million channels without a word
    argv = [str(video), "--no-display", "--model", str(fake_bundle_dir), "--stream-faces", n]
    assert f"--stream-faces must be 1 to 64 (28 LSL channels each), got {n}" in one_error_line(
        capsys, argv
    )


def test_port_in_use_fails_before_capture_and_touches_no_file(
    capsys, tmp_path, fake_bundle_dir, busy_port
):
    kept_csv, kept_jsonl = tmp_path / "old.csv", tmp_path / "old.jsonl"
    kept_csv.write_text("keep me\n")
    kept_jsonl.write_text("keep me too\n")
    argv = [
        "7",  # a camera that does not exist: the port is checked before any capture
        "--no-display", "--model", str(fake_bundle_dir), "--csv", str(kept_csv),
        "--stream", f"jsonl:{kept_jsonl}", "--stream", f"ws://127.0.0.1:{busy_port}",
    ]  # fmt: skip
    line = one_error_line(capsys, argv)
    assert f"port {busy_port} is already in use" in line
    assert kept_csv.read_text() == "keep me\n" and kept_jsonl.read_text() == "keep me too\n"


def test_a_camera_that_does_not_open_leaves_an_existing_jsonl_file_as_it_was(
    capsys, tmp_path, fake_bundle_dir
):
    kept = tmp_path / "old.jsonl"
    kept.write_text("keep me\n")
    argv = ["7", "--no-display", "--model", str(fake_bundle_dir), "--stream", f"jsonl:{kept}"]
    assert "camera 7" in one_error_line(capsys, argv)  # the outlets opened, the camera did not
    assert kept.read_text() == "keep me\n"


def test_with_jsonl_stdout_the_window_prints_snapshot_paths_to_stderr(monkeypatch, tmp_path):
    from types import SimpleNamespace

    from liveaffect.commands import live

    made = []

    class FakeWindow:
        def __init__(self, name, controls, **kwargs):
            made.append(controls)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

        def open(self, size):
            pass

    monkeypatch.setattr("liveaffect.runtime.window.WindowSink", FakeWindow)
    opts = SimpleNamespace(
        display=True, fast=False, snapshot_dir=tmp_path, window_size=None,
        output=None, output_raw=None, csv=None,
    )  # fmt: skip
    source = SimpleNamespace(is_live=False, fps=25.0, frame_size=(0, 0))
    with contextlib.ExitStack() as stack:
        live._open_sinks(opts, stack, source, None, None, sys.stderr)
    assert made[0].out is sys.stderr


def _osc_server():
    from pythonosc.dispatcher import Dispatcher
    from pythonosc.osc_server import BlockingOSCUDPServer

    received: list[tuple] = []
    dispatcher = Dispatcher()
    dispatcher.set_default_handler(lambda address, *args: received.append((address, args)))
    # one thread, datagrams in arrival order: the threading server handled each in its own
    # thread, and on a busy machine frame 1 was appended after frame 6
    server = BlockingOSCUDPServer(("127.0.0.1", 0), dispatcher)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, received


@pytest.mark.slow
@pytest.mark.shared
def test_every_outlet_gets_every_frame_and_stdout_stays_json(tmp_path, tiny_bundle):
    clip = shared_path("videos", "pyfeat_single_face.mp4")
    server, received = _osc_server()
    lsl_name = f"liveaffect-test-{uuid.uuid4().hex[:8]}"
    started = pylsl.local_clock()
    proc = subprocess.run(
        [
            sys.executable, "emotion_classifier.py", str(clip), "--no-display",
            "--model", str(tiny_bundle), "--max-frames", "15", "--stream", "jsonl:-",
            "--stream", f"lsl:{lsl_name}", "--stream", "ws://127.0.0.1:0",
            "--stream", f"osc://127.0.0.1:{server.server_address[1]}",
            "--stream", f"jsonl:{tmp_path / 'faces.jsonl'}", "--stream-faces", "2",
        ],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    time.sleep(0.2)
    server.shutdown()
    server.server_close()
    assert proc.returncode == 0, proc.stderr[-2000:]
    frames = [json.loads(line) for line in proc.stdout.splitlines()]  # nothing but JSON
    assert [f["frame"] for f in frames] == list(range(15))
    assert sum(bool(f["faces"]) for f in frames) >= 13
    assert [json.loads(line) for line in (tmp_path / "faces.jsonl").read_text().splitlines()] == (
        frames
    )
    assert "summary: frames=15" in proc.stderr and f"lsl '{lsl_name}'" in proc.stderr
    osc_frames = [args for address, args in received if address == "/liveaffect/frame"]
    assert [a[0] for a in osc_frames] == list(range(15))
    assert [a[1] for a in osc_frames] == pytest.approx([f["t"] for f in frames], abs=1e-6)
    # t is when each frame was read, on LSL's clock (not its position in the video: 0.0 ...)
    times = [f["t"] for f in frames]
    assert started < times[0] and times == sorted(times) and times[-1] < pylsl.local_clock()


@pytest.mark.slow
def test_sigterm_closes_every_outlet(tmp_path, tiny_bundle):
    long_clip = tmp_path / "long.avi"
    writer = cv2.VideoWriter(str(long_clip), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    for i in range(3000):
        writer.write(np.full((48, 64, 3), i % 250, np.uint8))
    writer.release()
    lines = tmp_path / "faces.jsonl"
    proc = subprocess.Popen(
        [
            sys.executable, "emotion_classifier.py", str(long_clip), "--no-display",
            "--model", str(tiny_bundle), "--stream", f"jsonl:{lines}",
            "--stream", "ws://127.0.0.1:0",
        ],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while not (lines.exists() and lines.read_text().count("\n") >= 5):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err[-2000:]
    assert "stop=sigterm" in out and "Traceback" not in err
    written = lines.read_text()
    assert written.endswith("\n")
    assert all(json.loads(line)["faces"] == [] for line in written.splitlines())
    port = int(out.split("ws://127.0.0.1:")[1].split()[0].rstrip(","))
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
