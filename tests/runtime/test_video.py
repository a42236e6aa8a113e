"""Frame sources: files deliver every frame, live sources keep the newest, errors are sentences."""

from __future__ import annotations

import http.server
import struct
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import shared_path

from liveaffect.runtime.video import SourceError, VideoSource, open_source, parse_source_spec


def write_video(path: Path, n: int, size=(64, 48), is_color=True, fourcc="mp4v") -> Path:
    """Frame i is filled with grey level 10 * i, so order survives lossy coding."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, size, is_color)
    assert writer.isOpened()
    for i in range(n):
        shape = (size[1], size[0], 3) if is_color else (size[1], size[0])
        writer.write(np.full(shape, (10 * i) % 256, np.uint8))
    writer.release()
    return path


class FakeCapture:
    """Stands in for cv2.VideoCapture: ``n`` frames (None = endless), ``delay_s`` per read."""

    def __init__(self, n=None, delay_s=0.001, block: threading.Event | None = None, fail_at=None):
        self.n, self.delay_s, self.block, self.fail_at = n, delay_s, block, fail_at
        self.count = 0
        self.released = threading.Event()

    def read(self):
        if self.block is not None:
            self.block.wait(5.0)
        time.sleep(self.delay_s)
        if self.fail_at is not None and self.count == self.fail_at:
            raise RuntimeError("device unplugged")
        if self.n is not None and self.count >= self.n:
            return False, None
        self.count += 1
        return True, np.full((4, 6, 3), self.count % 256, np.uint8)

    def get(self, prop):
        return {cv2.CAP_PROP_FPS: 30.0, cv2.CAP_PROP_FRAME_WIDTH: 6.0}.get(prop, 0.0)

    def release(self):
        self.released.set()


def test_video_file_yields_every_frame_in_order(tmp_path):
    path = write_video(tmp_path / "clip.mp4", 20)
    with open_source(str(path), queue_size=2) as source:
        assert not source.is_live
        assert source.frame_size == (64, 48)
        assert source.fps == pytest.approx(10.0)
        assert source.frame_count == 20
        frames = []
        for frame in source:
            if frame.index % 5 == 0:
                time.sleep(0.02)  # a slow consumer must not lose file frames
            frames.append(frame)
    assert [f.index for f in frames] == list(range(20))
    levels = [float(f.image_bgr.mean()) for f in frames]
    assert np.allclose(levels, 10 * np.arange(20), atol=4)
    # timestamp_ms of a file frame is its position in the video (10 fps: 100 ms apart),
    # however fast or slow it was read
    stamps = np.array([f.timestamp_ms for f in frames])
    np.testing.assert_allclose(stamps, 100.0 * np.arange(20), atol=1.0)
    reads = np.array([f.read_at_ms for f in frames])
    assert np.all(np.diff(reads) >= 0) and abs(reads[-1] - time.monotonic() * 1000) < 10_000
    assert source.frames_read == 20 and source.frames_dropped == 0 and source.error is None


@pytest.mark.shared
def test_shared_clip_every_frame():
    clip = shared_path("videos", "pyfeat_single_face.mp4")
    with open_source(clip) as source:
        indices = [f.index for f in source]
    assert indices == list(range(72))
    assert source.frame_size == (640, 360) and source.fps == pytest.approx(30.0)


@pytest.mark.shared
def test_one_decoding_thread_gives_the_same_frames():
    """Batch analysis decodes on one FFmpeg thread (its own threads fill the cores)."""
    clip = shared_path("videos", "pyfeat_single_face.mp4")
    with open_source(clip) as source:
        default = [f.image_bgr for f in source]
    with open_source(clip, decode_threads=1) as source:
        assert source._capture.get(cv2.CAP_PROP_N_THREADS) == 1
        single = [f.image_bgr for f in source]
    assert len(single) == len(default) == 72
    assert all(np.array_equal(a, b) for a, b in zip(single, default, strict=True))
    with pytest.raises(ValueError, match="decode_threads"):
        open_source(clip, decode_threads=0)


def test_grey_video_arrives_as_bgr(tmp_path):
    path = write_video(tmp_path / "grey.mp4", 3, is_color=False)
    with open_source(path) as source:
        frames = list(source)
    assert len(frames) == 3
    assert all(f.image_bgr.shape == (48, 64, 3) and f.image_bgr.dtype == np.uint8 for f in frames)


def test_missing_file_names_the_path(tmp_path):
    missing = tmp_path / "nowhere" / "clip.mp4"
    with pytest.raises(SourceError, match="not found") as info:
        open_source(str(missing))
    assert str(missing) in str(info.value)


def test_text_file_named_mp4_is_rejected(tmp_path):
    fake = tmp_path / "x.mp4"
    fake.write_text("this is not a video\n" * 50)
    with pytest.raises(SourceError, match="as a video"):
        open_source(fake)


def test_folder_is_rejected(tmp_path):
    with pytest.raises(SourceError, match="folder"):
        open_source(tmp_path)


def test_missing_camera():
    if Path("/dev/video7").exists():
        pytest.skip("this machine has a /dev/video7")
    with pytest.raises(SourceError, match="camera 7"):
        open_source(7)
    with pytest.raises(SourceError, match="camera 7"):
        open_source("7")


def test_unreachable_stream_fails_fast():
    start = time.monotonic()
    with pytest.raises(SourceError, match=r"stream http://127\.0\.0\.1:9/"):
        open_source("http://127.0.0.1:9/live.mjpg", open_timeout_s=2)
    assert time.monotonic() - start < 5


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (None, ("camera", 0)),
        (0, ("camera", 0)),
        (2, ("camera", 2)),
        ("1", ("camera", 1)),
        (" 3 ", ("camera", 3)),
        ("rtsp://cam.local/stream", ("stream", "rtsp://cam.local/stream")),
        ("http://10.0.0.1/video.mjpg", ("stream", "http://10.0.0.1/video.mjpg")),
        ("https://h/x.m3u8", ("stream", "https://h/x.m3u8")),
        ("file:///data/a.mp4", ("file", "/data/a.mp4")),
        ("videos/a b.mp4", ("file", "videos/a b.mp4")),
    ],
)
def test_parse_spec(spec, expected):
    assert parse_source_spec(spec) == expected


@pytest.mark.parametrize("spec", [-1, "ftp://host/a.mp4"])
def test_parse_spec_rejects(spec):
    with pytest.raises(SourceError):
        parse_source_spec(spec)


def test_live_source_keeps_newest_frame_and_counts_drops():
    capture = FakeCapture(n=200, delay_s=0.001)
    with VideoSource(capture, is_live=True, path_or_url="0") as source:
        assert source.fps == 30.0
        first = next(source)
        time.sleep(0.15)  # the reader moves on while we are busy
        read_before = source.frames_read
        newest = next(source)
        assert newest.index >= read_before - 1 > first.index + 10
        consumed = [first, newest]
        for frame in source:
            consumed.append(frame)
            time.sleep(0.01)
    indices = [f.index for f in consumed]
    assert indices == sorted(set(indices))
    assert source.frames_read == 200
    assert source.frames_dropped == 200 - len(consumed) > 0
    assert source.error == "camera 0 stopped delivering frames"
    assert source.frame_size == (6, 4)


def test_live_source_that_goes_silent_times_out():
    gate = threading.Event()
    capture = FakeCapture(block=gate)
    source = VideoSource(capture, is_live=True, path_or_url="rtsp://cam/x", read_timeout_s=0.2)
    start = time.monotonic()
    assert list(source) == []
    assert 0.15 < time.monotonic() - start < 2
    assert "no frame from rtsp://cam/x" in source.error
    assert next(source, None) is None  # stays ended
    source.close(join_timeout_s=0.1)
    gate.set()  # the stuck read returns; the thread then releases the capture
    assert capture.released.wait(3)


def test_read_exception_ends_iteration_with_error():
    with VideoSource(FakeCapture(fail_at=3), is_live=True, path_or_url="1") as source:
        frames = list(source)
    assert 1 <= len(frames) <= 3
    assert "device unplugged" in source.error


def test_close_twice_stops_reader_and_releases():
    capture = FakeCapture(n=None)
    source = VideoSource(capture, is_live=False, path_or_url="endless.mp4", queue_size=2)
    next(source)
    time.sleep(0.05)  # the reader now waits on the full queue (back-pressure)
    assert source.is_running
    assert source.frames_read <= 4
    source.close()
    source.close()
    assert not source.is_running
    assert capture.released.is_set()
    assert next(source, None) is None


def test_context_exit_mid_file_stops_thread(tmp_path):
    path = write_video(tmp_path / "clip.avi", 30, fourcc="MJPG")
    with open_source(path, queue_size=1) as source:
        assert next(source).index == 0
    assert not source.is_running


class _MjpegHandler(http.server.BaseHTTPRequestHandler):
    """An IP-camera-like MJPEG stream of 40 numbered frames, then the connection closes."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        for i in range(40):
            jpg = cv2.imencode(".jpg", np.full((48, 64, 3), 5 * i, np.uint8))[1].tobytes()
            head = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpg)
            self.wfile.write(head + jpg + b"\r\n")
            self.wfile.flush()
            time.sleep(0.005)


def test_mjpeg_http_stream_on_loopback():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _MjpegHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/video.mjpg"
        with open_source(url) as source:
            assert source.is_live and source.path_or_url == url
            frames = []
            for frame in source:
                frames.append(frame)
                time.sleep(0.03)  # slower than the stream: older frames are dropped
    finally:
        server.shutdown()
        server.server_close()
    assert source.frames_read == 40
    assert source.frames_dropped == 40 - len(frames) > 0
    assert frames[-1].index == 39
    assert source.error is not None and "stopped delivering" in source.error


def test_live_frames_are_stamped_with_their_capture_time():
    """Cameras and streams: timestamp_ms is when the frame was captured, as Unix time."""
    from liveaffect.runtime.video import VideoSource

    class Camera:
        def __init__(self):
            self.n = 0

        def read(self):
            self.n += 1
            time.sleep(0.01)
            return (self.n <= 5), np.zeros((8, 8, 3), np.uint8)

        def get(self, prop):
            return 0.0

        def release(self):
            pass

    before = time.time() * 1000
    with VideoSource(Camera(), is_live=True, path_or_url="0") as source:
        frames = [source.read() for _ in range(3)]
    after = time.time() * 1000
    stamps = [f.timestamp_ms for f in frames if f is not None]
    assert stamps and all(before <= t <= after for t in stamps)
    assert stamps == sorted(stamps)


def _with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    """``jpeg`` with an EXIF APP1 segment holding only the Orientation tag (0x0112)."""
    ifd = struct.pack("<HHHIHH", 1, 0x0112, 3, 1, orientation, 0) + struct.pack("<I", 0)
    app1 = b"Exif\x00\x00" + b"II*\x00" + struct.pack("<I", 8) + ifd
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + jpeg[2:]


def test_a_still_image_is_read_upright_by_its_exif_orientation(tmp_path):
    wide = np.zeros((32, 64, 3), np.uint8)
    wide[:, :32] = 255  # left half white: turned 90 degrees clockwise, the top half is
    path = tmp_path / "phone.jpg"
    path.write_bytes(_with_exif_orientation(cv2.imencode(".jpg", wide)[1].tobytes(), 6))
    with open_source(path) as source:
        frames = list(source)
    assert source.is_still and source.frame_size == (32, 64) and len(frames) == 1
    image = frames[0].image_bgr
    assert image.shape == (64, 32, 3)
    assert image[:32].mean() > 200 and image[32:].mean() < 50
    assert source.error is None and source.fps == 25.0


def test_a_corrupt_still_image_is_called_an_image(tmp_path):
    path = tmp_path / "broken.png"
    path.write_text("not an image")
    with pytest.raises(SourceError, match=r"cannot read .*broken.png as an image \(corrupt"):
        open_source(path)
