"""The real OpenCV window under a virtual X server (Xvfb).

The app runs on a real clip; once its window exists a screenshot must show a drawn
face box, then ``q`` (or the window manager's close message) must end the run with
exit status 0 and a CSV that holds every processed frame.
Needs the Debian packages ``xvfb xdotool imagemagick`` (``.ci/run`` installs them).
"""

from __future__ import annotations

import contextlib
import csv
import ctypes
import ctypes.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import shared_path

from liveaffect.runtime.style import id_color

REPO = Path(__file__).resolve().parents[2]
WINDOW = "liveaffect"
TOOLS = ("Xvfb", "xdotool", "import")
XVFB = ("Xvfb", "-nolisten", "tcp", "-noreset")
"""``-noreset``: the server must not reset when a client leaves (see _wait_until_it_answers)."""
SCREEN = "2800x1200x24"
"""Wide enough that the window (video plus side panel, up to 2786 px for 1080p) is never
shrunk to fit the screen, which would blend the box colours the tests look for."""
NEVER_PAINTED_S = 3.0
"""How long a window may stay all black before screenshot_with_box maps it again."""

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not all(shutil.which(t) for t in TOOLS),
        reason="needs Xvfb, xdotool and ImageMagick: apt-get install -y xvfb xdotool imagemagick",
    ),
]


@pytest.fixture
def xvfb():
    """Xvfb with a screen wide enough for the whole canvas; yields ':N'."""
    with _xvfb(SCREEN) as display:
        yield display


@pytest.fixture
def laptop_xvfb():
    """Xvfb with a small (1024x768) screen, where windows must be fitted; yields ':N'."""
    with _xvfb("1024x768x24") as display:
        yield display


@contextlib.contextmanager
def _xvfb(screen: str):
    """Start Xvfb on a free display (it picks the number itself); yields ':N'."""
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        [*XVFB, "-displayfd", str(write_fd), "-screen", "0", screen],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        number = pipe.readline().strip()
    if not number:
        proc.kill()
        pytest.fail("Xvfb did not start")
    display = f":{number}"
    _wait_until_it_answers(display, proc)
    try:
        yield display
    finally:
        proc.terminate()
        proc.wait(10)


def _wait_until_it_answers(display: str, proc: subprocess.Popen, timeout_s: float = 20) -> None:
    """Return once an X client can connect to ``display``; fail if Xvfb exits or never does.

    Xvfb is started with ``-noreset``: by default an X server resets when its last client
    disconnects, so the app, started right after this check's client left, could find it
    resetting ("cannot connect to the display ':0'", twice in full runs on 2026-12-06).
    Measured with Xvfb started, one ``xdotool`` client, then ``XOpenDisplay`` at once: 10
    failures in 300 starts without ``-noreset``, none in 300 with it.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"Xvfb exited (status {proc.returncode}) right after naming {display}")
        if x(display, "xdotool", "getdisplaygeometry", check=False).strip():  # "W H" once up
            return
        time.sleep(0.2)
    proc.kill()
    pytest.fail(f"Xvfb named {display} but no client could connect to it in {timeout_s:.0f} s")


def x(display: str, *cmd: str, check: bool = True) -> str:
    env = {**os.environ, "DISPLAY": display}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed: {proc.stderr.strip()}")
    return proc.stdout


def wait_for_window(
    display: str, app: subprocess.Popen, timeout_s: float = 180, stderr_file: Path | None = None
) -> list[str]:
    """The app's window ids once its window is up; fails with the app's last words if it
    exits first (from its stderr pipe, or from ``stderr_file`` where it writes there)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if app.poll() is not None:
            said = _said(app, stderr_file)
            pytest.fail(f"the app exited ({app.returncode}) before its window appeared{said}")
        ids = x(display, "xdotool", "search", "--name", f"^{WINDOW}$", check=False).split()
        if ids:
            return ids
        time.sleep(0.3)
    pytest.fail("the window never appeared")


def _said(app: subprocess.Popen, stderr_file: Path | None = None) -> str:
    """The end of what an exited app wrote to stderr (its pipe, or ``stderr_file``)."""
    if stderr_file is not None:
        text = stderr_file.read_text(errors="replace") if stderr_file.exists() else ""
    elif app.stderr is not None:
        text = app.stderr.read() or ""
        text = text.decode(errors="replace") if isinstance(text, bytes) else text
    else:
        return ""
    return f"; its stderr ends: {text[-800:].strip()!r}" if text.strip() else ""


def screenshot_with_box(
    display: str, app: subprocess.Popen, out: Path, windows: list[str], timeout_s: float = 60
) -> np.ndarray:
    """Captures the app's window until it shows box-coloured pixels; returns that image.

    The window itself is captured (not the root), so where the X server placed it does
    not matter; the boxes must be in its video part (left of x=960, where the panel starts).
    The window ids are searched again before every round: Qt may map the window under an
    id other than the first one found.

    A window that stays all black (not even the grey of Qt's background) for
    ``NEVER_PAINTED_S`` is unmapped and mapped again, once, as a window manager does when a
    window is restored: under heavy load Qt 5 on an X server without a window manager
    sometimes misses the window's first Expose and never paints it (4 of 39 runs beside
    three busy loops on 2026-12-07, the app meanwhile processing every frame); a remap
    made Qt paint it, boxes included. Without a box after that the test still fails.
    """
    deadline = time.monotonic() + timeout_s
    seen = []
    black_since, remapped = None, False
    while time.monotonic() < deadline and app.poll() is None:
        found = x(display, "xdotool", "search", "--name", f"^{WINDOW}$", check=False).split()
        for window in dict.fromkeys([*windows, *found]):
            out.unlink(missing_ok=True)
            x(display, "import", "-window", window, str(out), check=False)
            image = cv2.imread(str(out)) if out.exists() else None
            if image is None:
                continue
            mask = np.zeros(image.shape[:2], bool)
            pixels = image.astype(np.int16)
            for track_id in range(1, 21):  # boxes are drawn in their face id's colour
                mask |= np.abs(pixels - np.array(id_color(track_id))).sum(axis=-1) <= 30
            seen.append((window, image.shape[1::-1], int(mask[:, :900].sum())))
            if seen[-1][2] > 200:
                return image
            if image.max() > 0:
                black_since = None
            elif black_since is None:
                black_since = time.monotonic()
            elif not remapped and time.monotonic() - black_since > NEVER_PAINTED_S:
                x(display, "xdotool", "windowunmap", "--sync", window, check=False)
                x(display, "xdotool", "windowmap", "--sync", window, check=False)
                remapped = True
                warnings.warn(f"window {window} never painted; mapped it again", stacklevel=1)
        time.sleep(0.2)
    log = (out.parent / "stdout.txt").read_text()[-300:]
    pytest.fail(
        f"no drawn face box in the window (window, size, box pixels per capture: {seen[-6:]}; "
        f"remapped after {NEVER_PAINTED_S} s all black: {remapped}; app exit {app.poll()}; {log})"
    )


def send_wm_delete(display: str, window: int) -> None:
    """What a window manager sends when the user clicks the close button."""

    class ClientMessage(ctypes.Structure):
        _fields_ = [
            ("type", ctypes.c_int),
            ("serial", ctypes.c_ulong),
            ("send_event", ctypes.c_int),
            ("display", ctypes.c_void_p),
            ("window", ctypes.c_ulong),
            ("message_type", ctypes.c_ulong),
            ("format", ctypes.c_int),
            ("data", ctypes.c_long * 5),
        ]

    class XEvent(ctypes.Union):
        _fields_ = [("xclient", ClientMessage), ("pad", ctypes.c_long * 24)]

    lib = ctypes.util.find_library("X11")
    if lib is None:
        pytest.skip("libX11 not found")
    xlib = ctypes.CDLL(lib)
    xlib.XOpenDisplay.restype = ctypes.c_void_p
    xlib.XOpenDisplay.argtypes = [ctypes.c_char_p]
    xlib.XInternAtom.restype = ctypes.c_ulong
    xlib.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    xlib.XSendEvent.argtypes = [
        ctypes.c_void_p,
        ctypes.c_ulong,
        ctypes.c_int,
        ctypes.c_long,
        ctypes.c_void_p,
    ]
    xlib.XFlush.argtypes = [ctypes.c_void_p]
    xlib.XCloseDisplay.argtypes = [ctypes.c_void_p]
    dpy = xlib.XOpenDisplay(display.encode())
    assert dpy, f"cannot open display {display}"
    event = XEvent()
    event.xclient.type = 33  # ClientMessage
    event.xclient.window = window
    event.xclient.message_type = xlib.XInternAtom(dpy, b"WM_PROTOCOLS", 0)
    event.xclient.format = 32
    event.xclient.data[0] = xlib.XInternAtom(dpy, b"WM_DELETE_WINDOW", 0)
    xlib.XSendEvent(dpy, window, 0, 0, ctypes.byref(event))
    xlib.XFlush(dpy)
    xlib.XCloseDisplay(dpy)


@contextlib.contextmanager
def start_app(display: str, tmp_path: Path, bundle: Path, csv_path: Path, extra=()):
    video = shared_path("videos", "pyfeat_WolfgangLanger_Pexels.mp4")  # 472 frames
    env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb"}
    env.pop("WAYLAND_DISPLAY", None)
    out, err = (tmp_path / "stdout.txt").open("w+"), (tmp_path / "stderr.txt").open("w+")
    cmd = [sys.executable, "emotion_classifier.py", str(video), "--model", str(bundle)]
    app = subprocess.Popen(
        [*cmd, "--csv", str(csv_path), *extra], cwd=REPO, env=env, stdout=out, stderr=err
    )
    try:
        yield app
    finally:
        if app.poll() is None:
            app.kill()
            app.wait(10)
        out.close()
        err.close()


def finished(app: subprocess.Popen, tmp_path: Path) -> tuple[dict[str, str], str]:
    try:
        code = app.wait(60)
    except subprocess.TimeoutExpired:
        pytest.fail("the app did not quit")
    stdout = (tmp_path / "stdout.txt").read_text()
    stderr = (tmp_path / "stderr.txt").read_text()
    assert code == 0, stderr[-2000:]
    assert "Traceback" not in stderr
    lines = [line for line in stdout.splitlines() if line.startswith("summary:")]
    assert len(lines) == 1, stdout
    return dict(re.findall(r"(\w+)=(\S+)", lines[0])), stderr


def test_window_shows_boxes_and_q_quits(xvfb, tmp_path, tiny_bundle):
    csv_path = tmp_path / "faces.csv"
    with start_app(xvfb, tmp_path, tiny_bundle, csv_path) as app:
        windows = wait_for_window(xvfb, app, stderr_file=tmp_path / "stderr.txt")
        image = screenshot_with_box(xvfb, app, tmp_path / "shot.png", windows)
        assert image.shape[0] == 540 and image.shape[1] > 960  # 640x360 enlarged, plus the panel
        for window in windows:
            x(xvfb, "xdotool", "key", "--window", window, "q", check=False)
        summary, _ = finished(app, tmp_path)
    assert summary["stop"] == "quit"  # q ended it, not the end of the clip
    frames = int(summary["frames"])
    assert 0 < frames < 472
    with csv_path.open() as fh:
        rows = list(csv.DictReader(fh))
    per_frame = Counter(int(r["frame"]) for r in rows)
    # every processed frame with a face is in the CSV, and nothing else
    assert len(per_frame) == int(summary["frames_with_faces"]) >= 0.9 * frames
    assert len(rows) == int(summary["faces"])
    assert max(per_frame) < frames


def test_q_closes_every_stream_outlet_after_the_last_frame(xvfb, tmp_path, tiny_bundle):
    lines = tmp_path / "faces.jsonl"
    osc = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    osc.bind(("127.0.0.1", 0))
    osc.settimeout(0.2)
    bundles, quiet = [], threading.Event()

    def receive():  # read as they come: loopback UDP drops what overflows the buffer
        while not quiet.is_set():
            with contextlib.suppress(TimeoutError):
                bundles.append(osc.recv(65536))

    receiver = threading.Thread(target=receive, daemon=True)
    receiver.start()
    streams = [
        f"jsonl:{lines}",
        "ws://127.0.0.1:0",
        f"osc://127.0.0.1:{osc.getsockname()[1]}",
        f"lsl:liveaffect-q-{os.getpid()}",
    ]
    extra = [arg for target in streams for arg in ("--stream", target)]
    with start_app(xvfb, tmp_path, tiny_bundle, tmp_path / "faces.csv", extra) as app:
        windows = wait_for_window(xvfb, app, stderr_file=tmp_path / "stderr.txt")
        deadline = time.monotonic() + 120
        while not (lines.exists() and lines.read_text().count("\n") >= 10):
            assert app.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        for window in windows:
            x(xvfb, "xdotool", "key", "--window", window, "q", check=False)
        summary, _ = finished(app, tmp_path)
    assert summary["stop"] == "quit"
    frames = int(summary["frames"])
    assert 10 <= frames < 472
    # every frame the loop finished went out before the app exited, and no line is cut
    written = lines.read_text()
    assert written.endswith("\n")
    assert [json.loads(line)["frame"] for line in written.splitlines()] == list(range(frames))
    time.sleep(0.5)  # the app has exited; what it sent is in the socket's buffer
    quiet.set()
    receiver.join(5)
    osc.close()
    assert len(bundles) == frames  # one bundle per frame
    stdout = (tmp_path / "stdout.txt").read_text() + (tmp_path / "stderr.txt").read_text()
    port = int(re.search(r"ws://127\.0\.0\.1:(\d+)", stdout).group(1))
    with pytest.raises(OSError):  # the WebSocket server is closed
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_closing_the_window_quits(xvfb, tmp_path, tiny_bundle):
    csv_path = tmp_path / "faces.csv"
    with start_app(xvfb, tmp_path, tiny_bundle, csv_path) as app:
        windows = wait_for_window(xvfb, app, stderr_file=tmp_path / "stderr.txt")
        screenshot_with_box(xvfb, app, tmp_path / "shot.png", windows)
        for window in windows:
            send_wm_delete(xvfb, int(window))
        summary, _ = finished(app, tmp_path)
    assert summary["stop"] == "quit"
    assert len(list(csv.DictReader(csv_path.open()))) == int(summary["faces"])


_WINDOW_SCRIPT = """
import json, sys, time
import cv2, numpy as np
from liveaffect.runtime.window import WindowSink
from liveaffect.types import FrameResult
mode = sys.argv[1]
frame = np.full((1080, 1920, 3), 90, np.uint8)
cv2.rectangle(frame, (800, 300), (1120, 700), (0, 200, 0), 6)
if mode == "resize":
    sink = WindowSink("liveaffect")
    sink.open((1920, 1080))
    end = time.monotonic() + 40
    while time.monotonic() < end and not sink.stop_requested:
        sink.write(frame, FrameResult(0, 0.0))
        rect = cv2.getWindowImageRect("liveaffect")
        print(json.dumps({"rect": rect[2:]}), flush=True)
        time.sleep(0.05)
elif mode == "panel":  # p shows/hides the panel: the canvas's width changes
    sink = WindowSink("liveaffect")
    sink.open((640, 360))
    end = time.monotonic() + 40
    i = 0
    while time.monotonic() < end and not sink.stop_requested:
        width = 640 if (i // 40) % 2 == 0 else 1000  # 40 frames each, then back
        sink.write(frame[:360, :width], FrameResult(i, 0.0))
        rect = cv2.getWindowImageRect("liveaffect")
        print(json.dumps({"canvas": width, "rect": rect[2:]}), flush=True)
        i += 1
        time.sleep(0.02)
else:  # pace
    sink = WindowSink("liveaffect", pace_fps=20)
    start = time.monotonic()
    for i in range(21):
        sink.write(frame[:360, :640], FrameResult(i, 0.0))
    print(json.dumps({"elapsed": time.monotonic() - start}), flush=True)
sink.close()
"""


def _script(display: str, mode: str) -> subprocess.Popen:
    env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb"}
    env.pop("WAYLAND_DISPLAY", None)
    return subprocess.Popen(
        [sys.executable, "-c", _WINDOW_SCRIPT, mode],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_1080p_window_fits_the_screen_and_can_be_resized(laptop_xvfb):
    """On a 1024x768 screen a 1920x1080 source opens at most 85% of it, 16:9 (it used to
    open at 1920x1080, off the screen, and could not be resized)."""
    import json

    xvfb = laptop_xvfb
    app = _script(xvfb, "resize")
    try:
        (window, *_) = wait_for_window(xvfb, app)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # Qt applies the first size a few frames late
            first = json.loads(app.stdout.readline())
            if first["rect"][0] < 1000:
                break
        assert first["rect"][0] <= 0.86 * 1024 and first["rect"][1] <= 0.86 * 768
        assert abs(first["rect"][0] / first["rect"][1] - 16 / 9) < 0.02
        x(xvfb, "xdotool", "windowsize", window, "480", "270")
        while time.monotonic() < deadline:
            now = json.loads(app.stdout.readline())
            if now["rect"][0] <= 490:
                break
        else:
            pytest.fail(f"the window did not follow the resize: {now}")
        assert abs(now["rect"][0] - 480) <= 4 and abs(now["rect"][1] - 270) <= 4
    finally:
        app.kill()
        app.wait(10)


def test_a_window_resized_to_another_shape_is_filled(laptop_xvfb):
    """A window dragged to another shape than the canvas's gets canvases of its new shape
    (the app letterboxes them itself, never stretched): Qt used to keep the picture area
    at the first canvas's aspect ratio, so a 16:9 window made 700x600 showed a 700x394
    picture between two bands of Qt's grey, and the view was drawn for that."""
    import json

    xvfb = laptop_xvfb
    app = _script(xvfb, "resize")
    try:
        (window, *_) = wait_for_window(xvfb, app)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # Qt applies the first size a few frames late
            if json.loads(app.stdout.readline())["rect"][0] < 1000:
                break
        x(xvfb, "xdotool", "windowsize", window, "700", "600")
        now = None
        while time.monotonic() < deadline:
            now = json.loads(app.stdout.readline())
            if abs(now["rect"][0] - 700) <= 4 and abs(now["rect"][1] - 600) <= 4:
                break
        else:
            pytest.fail(f"the picture area is not the window's 700x600: {now}")
    finally:
        app.kill()
        app.wait(10)


def test_a_file_plays_at_its_frame_rate_with_a_window(xvfb):
    import json

    app = _script(xvfb, "pace")
    out, err = app.communicate(timeout=120)
    assert app.returncode == 0, err[-2000:]
    assert json.loads(out.splitlines()[-1])["elapsed"] >= 0.95  # 20 frame gaps at 20 fps


def test_a_still_image_stays_with_its_keys_working_until_q(xvfb, tmp_path, tiny_bundle):
    """A still image is analysed once and stays on screen: `p` and `s` work on it (every
    key used to close it), `q` ends the app."""
    capture = cv2.VideoCapture(str(shared_path("videos", "pyfeat_WolfgangLanger_Pexels.mp4")))
    ok, frame = capture.read()
    capture.release()
    assert ok
    image = tmp_path / "face.jpg"
    cv2.imwrite(str(image), frame)
    env = {**os.environ, "DISPLAY": xvfb, "QT_QPA_PLATFORM": "xcb"}
    env.pop("WAYLAND_DISPLAY", None)
    out, err = (tmp_path / "stdout.txt").open("w+"), (tmp_path / "stderr.txt").open("w+")
    cmd = [sys.executable, "emotion_classifier.py", str(image), "--model", str(tiny_bundle)]
    app = subprocess.Popen(
        [*cmd, "--csv", str(tmp_path / "faces.csv")], cwd=REPO, env=env, stdout=out, stderr=err
    )
    try:
        (window, *_) = wait_for_window(xvfb, app, stderr_file=tmp_path / "stderr.txt")
        time.sleep(2.0)
        for key in ("p", "s"):
            x(xvfb, "xdotool", "key", "--window", window, key, check=False)
            time.sleep(1.0)
            assert app.poll() is None, f"{key!r} closed the still image"
        deadline = time.monotonic() + 20
        while not list(tmp_path.glob("liveaffect-*.png")) and time.monotonic() < deadline:
            time.sleep(0.3)
        assert list(tmp_path.glob("liveaffect-*.png")), "`s` saved no snapshot"
        x(xvfb, "xdotool", "key", "--window", window, "q", check=False)
        summary, _ = finished(app, tmp_path)
        assert summary["frames"] == "1"
    finally:
        if app.poll() is None:
            app.kill()
            app.wait(10)


def test_the_window_keeps_its_size_when_the_panel_is_toggled(laptop_xvfb):
    """`p` changes the canvas's width: the window keeps its size (the canvas is centred in
    it, shrunk when wider, never stretched), so toggling never shrinks the window step by
    step nor pushes it off the screen."""
    import json

    app = _script(laptop_xvfb, "panel")
    try:
        wait_for_window(laptop_xvfb, app)
        seen: dict[int, list] = {640: [], 1000: []}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (len(seen[1000]) < 30 or len(seen[640]) < 60):
            line = json.loads(app.stdout.readline())
            seen[line["canvas"]].append(line["rect"])
        opened = seen[640][5]  # Qt applies the first size a few frames late
        for width, rects in seen.items():
            assert all(abs(w - opened[0]) <= 4 and abs(h - opened[1]) <= 4 for w, h in rects[5:]), (
                width,
                rects[-5:],
            )
        assert opened[0] <= 0.86 * 1024 and opened[1] <= 0.86 * 768
    finally:
        app.kill()
        app.wait(10)
