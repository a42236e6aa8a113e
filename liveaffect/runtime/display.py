"""Can a window open, and how big is the screen? Answered without opening a window.

OpenCV's Qt backend *aborts the process* (SIGABRT, exit 134) when ``DISPLAY`` names an X
server that is not there, so the live app asks first, before any output file is touched:
:func:`display_problem` connects to the X server with Xlib (``XOpenDisplay`` through
:mod:`ctypes`); where Xlib cannot be loaded it opens and closes a window in a child
process instead. :func:`screen_size` reads the X screen's size for fitting the window.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import subprocess
import sys

_PROBE = (
    "import cv2; cv2.namedWindow('liveaffect-probe', cv2.WINDOW_NORMAL); "
    "cv2.destroyAllWindows(); cv2.waitKey(1)"
)


def _xlib():
    name = ctypes.util.find_library("X11")
    if name is None:
        return None
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    lib.XOpenDisplay.restype = ctypes.c_void_p
    lib.XOpenDisplay.argtypes = [ctypes.c_char_p]
    lib.XCloseDisplay.argtypes = [ctypes.c_void_p]
    for fn in (lib.XDisplayWidth, lib.XDisplayHeight):
        fn.argtypes = [ctypes.c_void_p, ctypes.c_int]
        fn.restype = ctypes.c_int
    lib.XDefaultScreen.argtypes = [ctypes.c_void_p]
    lib.XDefaultScreen.restype = ctypes.c_int
    return lib


@contextlib.contextmanager
def _x_display(lib, name: str):
    handle = lib.XOpenDisplay(name.encode())
    try:
        yield handle or None
    finally:
        if handle:
            lib.XCloseDisplay(handle)


def display_problem(timeout_s: float = 30.0) -> str | None:
    """Why a window cannot open here (one sentence), or None when it can.

    Only Linux is checked (macOS and Windows always have a display).
    """
    if not sys.platform.startswith("linux"):
        return None
    x_name = os.environ.get("DISPLAY", "")
    if not x_name:
        if os.environ.get("WAYLAND_DISPLAY"):
            return None
        return "no display found (DISPLAY is not set)"
    lib = _xlib()
    if lib is not None:
        with _x_display(lib, x_name) as handle:
            return None if handle else f"cannot connect to the display {x_name!r}"
    try:  # no Xlib: let OpenCV try in a child process (it aborts there, not here)
        proc = subprocess.run(
            [sys.executable, "-c", _PROBE], capture_output=True, timeout=timeout_s, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return f"cannot open a window on the display {x_name!r}"
    return None if proc.returncode == 0 else f"cannot open a window on the display {x_name!r}"


def screen_size() -> tuple[int, int] | None:
    """(width, height) of the X screen in pixels, or None when unknown."""
    x_name = os.environ.get("DISPLAY", "")
    lib = _xlib() if x_name and sys.platform.startswith("linux") else None
    if lib is None:
        return None
    with _x_display(lib, x_name) as handle:
        if not handle:
            return None
        screen = lib.XDefaultScreen(handle)
        size = (lib.XDisplayWidth(handle, screen), lib.XDisplayHeight(handle, screen))
    return size if min(size) > 0 else None


def fit_window(
    frame_size: tuple[int, int], screen: tuple[int, int] | None, share: float = 0.85
) -> tuple[int, int]:
    """A window size with the frame's aspect ratio that fits ``share`` of the screen.

    Frames that already fit are shown at their own size; without a known screen, frames
    are fitted into 1280x720.
    """
    w, h = frame_size
    sw, sh = screen or (round(1280 / share), round(720 / share))
    scale = min(1.0, sw * share / max(w, 1), sh * share / max(h, 1))
    return max(1, round(w * scale)), max(1, round(h * scale))
