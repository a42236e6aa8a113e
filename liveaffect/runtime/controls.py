"""The live window's keys: what each does to the view, pausing, snapshots, quitting.

:class:`Controls` holds the window's interactive state and turns key codes (as
``cv2.waitKeyEx`` returns them) into changes of it; it has no window of its own, so
it is tested without a display. The keys are listed in
:data:`liveaffect.runtime.hud.KEYS`.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TextIO

import cv2
import numpy as np

from liveaffect.runtime.dashboard import View

QUIT_KEYS = frozenset((ord("q"), ord("Q"), 27))  # q, Q, Esc
TOGGLES = {ord("p"): "panel", ord("t"): "timings", ord("h"): "help", ord("?"): "help"}
HELP_LINE_S = 6.0
"""How long the one-line key summary shows at the start of a run."""
MESSAGE_S = 3.0


class Controls:
    """Interactive state of one live window.

    Args:
        snapshot_dir: where ``s`` saves PNG snapshots (made if missing).
        help_line_s: seconds the key summary shows after the first frame.
        clock: seconds, monotonic (tests pass a fake one).
        out: where a snapshot's path is printed (None: standard output; the live app
            passes standard error when ``--stream jsonl:-`` writes standard output).
    """

    def __init__(
        self,
        snapshot_dir: str | Path = ".",
        help_line_s: float = HELP_LINE_S,
        clock=time.monotonic,
        out: TextIO | None = None,
    ) -> None:
        self.snapshot_dir = Path(snapshot_dir)
        self.out = out
        self.help_line_s = float(help_line_s)
        self.clock = clock
        self.paused = False
        self.quit = False
        self.snapshots: list[Path] = []
        self._view = View()
        self._started: float | None = None
        self._message: tuple[str, float] | None = None

    @property
    def view(self) -> View:
        """What the canvas shows (panel, timings, help overlay ...)."""
        return self._view

    def notes(self) -> dict:
        """The passing notes to draw now (:func:`~liveaffect.runtime.hud.draw_notes` keywords):
        the key summary in the first seconds, PAUSED, the last snapshot's path for a while."""
        now = self.clock()
        if self._started is None:
            self._started = now
        message = self._message[0] if self._message and now < self._message[1] else None
        return {
            "help_line": now - self._started < self.help_line_s,
            "paused": self.paused,
            "message": message,
        }

    def handle_key(self, key: int, shown: np.ndarray | None = None) -> None:
        """Act on one key code (``-1``: no key); ``shown`` is what the window shows (for ``s``)."""
        if key < 0:
            return
        key &= 0xFFFF  # GTK and Qt add modifier flags (Shift, Caps Lock, Num Lock) above
        if key > 0xFF:  # arrows, F keys (X keysyms 0xFFxx): cv2.waitKey's low byte made
            return  # Left 'Q' (quit) and Right 'S' (snapshot); such keys do nothing
        if key in QUIT_KEYS:
            self.quit = True
        elif key == ord(" "):
            self.paused = not self.paused
        elif key in TOGGLES:
            self._view = self._view.toggled(TOGGLES[key])
        elif key in (ord("s"), ord("S")) and shown is not None:
            path = self.save_snapshot(shown)
            self._message = (f"saved {path}", self.clock() + MESSAGE_S)

    def save_snapshot(self, image: np.ndarray) -> Path:
        """Write ``image`` as a PNG into ``snapshot_dir``, print and return its path."""
        self.snapshot_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        path = self.snapshot_dir / f"liveaffect-{stamp}.png"
        k = 1
        while path.exists():
            k += 1
            path = self.snapshot_dir / f"liveaffect-{stamp}-{k}.png"
        if not cv2.imwrite(str(path), image):
            print(f"warning: could not write the snapshot {path}", file=sys.stderr, flush=True)
            return path
        self.snapshots.append(path)
        print(f"snapshot: {path.resolve()}", file=self.out, flush=True)
        return path
