"""The live view's keys in a real OpenCV window under a virtual X server (Xvfb).

On the multi-face clip: ``space`` pauses, ``s`` saves a PNG snapshot of the window
(beside the CSV) whose side panel has drawn bars in every card, two snapshots a
second apart while paused are identical, and ``q`` quits with exit status 0.
Needs the Debian packages ``xvfb xdotool imagemagick`` (``.ci/run`` installs them).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import shared_path
from test_window_xvfb import REPO, finished, pytestmark, wait_for_window, x, xvfb  # noqa: F401

from liveaffect.bundle import CARD_FILE, ModelCard
from liveaffect.runtime.dashboard import Dashboard, View
from liveaffect.runtime.style import BACKGROUND, CARD_COLOR


def wait_for(predicate, what: str, app: subprocess.Popen, timeout_s: float = 60.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        assert app.poll() is None, f"the app exited while waiting for {what}"
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def csv_rows(path: Path) -> int:
    return max(0, len(path.read_text().splitlines()) - 1) if path.exists() else 0


def _picture_size(display: str, window: str) -> tuple[int, int]:
    """The window's size as the X server has it (the picture area: no decorations here)."""
    out = x(display, "xdotool", "getwindowgeometry", "--shell", window)
    fields = dict(line.split("=", 1) for line in out.split())
    return int(fields["WIDTH"]), int(fields["HEIGHT"])


def test_space_pauses_s_snapshots_the_panel_q_quits(xvfb, tmp_path, tiny_bundle):  # noqa: F811
    video = shared_path("videos", "facenet_pytorch_video.mp4")  # crowd, 105 frames, 1080p
    csv_path = tmp_path / "faces.csv"
    env = {**os.environ, "DISPLAY": xvfb, "QT_QPA_PLATFORM": "xcb"}
    env.pop("WAYLAND_DISPLAY", None)
    cmd = [sys.executable, "emotion_classifier.py", str(video), "--model", str(tiny_bundle)]
    with (tmp_path / "stdout.txt").open("w+") as out, (tmp_path / "stderr.txt").open("w+") as err:
        app = subprocess.Popen([*cmd, "--csv", str(csv_path)], cwd=REPO, env=env, stdout=out,
                               stderr=err)  # fmt: skip
        try:
            (window,) = wait_for_window(xvfb, app, stderr_file=tmp_path / "stderr.txt")[:1]
            wait_for(lambda: csv_rows(csv_path) >= 6, "faces in the CSV", app)

            def key(name: str) -> None:
                x(xvfb, "xdotool", "key", "--window", window, name, check=False)

            def snapshots() -> list[Path]:
                return sorted(tmp_path.glob("liveaffect-*.png"))

            key("space")
            time.sleep(0.5)
            rows_paused = csv_rows(csv_path)
            key("s")
            first = wait_for(snapshots, "the first snapshot", app)[0]
            time.sleep(1.0)
            key("s")
            wait_for(lambda: len(snapshots()) == 2, "the second snapshot", app)
            assert csv_rows(csv_path) == rows_paused  # no frame went through while paused
            area = _picture_size(xvfb, window)
            key("q")
            summary, _ = finished(app, tmp_path)
        finally:
            if app.poll() is None:
                app.kill()
                app.wait(10)
    assert summary["stop"] == "quit" and int(summary["frames"]) < 105
    stdout = (tmp_path / "stdout.txt").read_text()
    assert f"snapshot: {first.resolve()}" in stdout  # the path is printed
    shot, again = (cv2.imread(str(p)) for p in snapshots())
    assert np.array_equal(shot, again)  # paused: the same picture a second later
    card = ModelCard.from_dict(json.loads((tiny_bundle / CARD_FILE).read_text()))
    dash = Dashboard(card)
    # the video plus the panel, drawn to fit the window (85% of the screen: smaller than the
    # 1080p frame's own canvas), not drawn at the frame's size and shrunk by Qt
    assert area[0] < dash.canvas_size((1920, 1080))[0]
    assert shot.shape[1::-1] == dash.canvas_size((1920, 1080), View(fit=area))
    height = shot.shape[0]
    layout = dash.panel.layout(height)
    panel = shot[:, round(1920 * height / 1080) :]
    filled = [s for s in layout.cards if not np.all(panel[s.rect[1]:s.rect[3], s.rect[0]:s.rect[2]]
                                                     == BACKGROUND)]  # fmt: skip
    assert filled, "no card drawn in the panel"
    for slot in filled:
        for name in ("expr", "va", "au"):
            x1, y1, x2, y2 = getattr(slot, name)
            area = panel[y1:y2, x1:x2].astype(int)
            drawn = ~np.all(area == CARD_COLOR, axis=-1)
            assert drawn.mean() > 0.03, f"{name} area of a card is empty"
            colored = (area.max(-1) - area.min(-1)) > 60  # bars/dot in the face's colour
            assert colored.sum() > 10, f"no coloured bar or dot in the {name} area"
