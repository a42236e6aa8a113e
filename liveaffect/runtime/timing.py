"""Stage timing for the live loop and ``bench``: one small profiler, one list of stages."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

STAGES = ("read", "detect", "track", "preprocess", "infer", "smooth", "draw")
"""Every stage a frame can pass through, in order (``read`` and ``draw`` happen in the loop)."""


class StageTimer:
    """Milliseconds spent per named stage of one frame.

    Example:
        >>> timer = StageTimer()
        >>> with timer.stage("detect"):
        ...     detections = detector.detect(image)
        >>> timer.ms["detect"]
    """

    def __init__(self, **already_ms: float) -> None:
        self.ms: dict[str, float] = {k: float(v) for k, v in already_ms.items()}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the ``with`` block as stage ``name`` (added to what it already has)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.ms[name] = self.ms.get(name, 0.0) + (time.perf_counter() - start) * 1000.0
