"""The window's geometry without a display: fitting to the screen, pacing a file to its
frame rate (the real window: test_window_xvfb.py)."""

from __future__ import annotations

import numpy as np
import pytest

from liveaffect.runtime.display import fit_window
from liveaffect.runtime.style import BACKGROUND
from liveaffect.runtime.window import WindowSink, letterbox


@pytest.mark.parametrize(
    ("frame", "screen", "expected"),
    [
        ((1920, 1080), (1366, 768), (1161, 653)),  # 85% of the laptop screen, 16:9 kept
        ((1920, 1080), (3840, 2160), (1920, 1080)),  # fits: its own size
        ((640, 360), None, (640, 360)),
        ((3840, 2160), None, (1280, 720)),  # unknown screen: fit into 1280x720
        ((1080, 1920), (1920, 1080), (516, 918)),  # portrait phone video
    ],
)
def test_fit_window(frame, screen, expected):
    w, h = fit_window(frame, screen)
    assert abs(w - expected[0]) <= 1 and abs(h - expected[1]) <= 1


def test_pacing_waits_for_the_files_frame_rate(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr("liveaffect.runtime.window.time.perf_counter", lambda: clock[0])
    paced = WindowSink(pace_fps=25)
    delays = []
    for _ in range(4):  # processing takes 10 ms a frame: wait the rest of the 40 ms
        delays.append(paced._delay_ms())
        clock[0] += delays[-1] / 1000 + 0.010  # the wait, then the next frame's work
    assert delays == [40, 30, 30, 30]
    clock[0] += 1.0  # far behind (slow machine): no waiting, no catching up in a burst
    assert paced._delay_ms() == 1 and paced._delay_ms() == 40
    assert WindowSink(pace_fps=None)._delay_ms() == 1  # --fast, cameras, streams


def test_letterbox_centres_and_only_shrinks_never_stretches():
    """A window shows its image pixel for pixel only at the window's size: other shapes
    are centred on the panel colour, and larger ones shrunk with their aspect kept."""
    image = np.full((240, 941, 3), 200, np.uint8)
    assert letterbox(image, (941, 240)) is image
    out = letterbox(image, (870, 337))  # wider than the window: shrunk to 870x222, centred
    assert out.shape == (337, 870, 3)
    rows = np.flatnonzero((out != BACKGROUND).any(axis=(1, 2)))
    assert rows[0] == (337 - 222) // 2 and rows[-1] - rows[0] + 1 == 222
    small = letterbox(image[:100, :300], (870, 337))  # smaller: not enlarged
    filled = np.argwhere((small != BACKGROUND).any(axis=2))
    assert tuple(filled.max(0) - filled.min(0) + 1) == (100, 300)
    again = letterbox(image[:100, :300], (870, 337), out=small)
    assert again is small  # the buffer is reused
