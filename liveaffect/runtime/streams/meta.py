"""What every outlet says about itself: the model's name and version, label names, AU
thresholds, and the capture clock shared by all outlets.

Timestamps: every :class:`~liveaffect.types.Frame` carries ``read_at_ms``, taken from
``time.monotonic()`` by the reader thread the moment the frame was captured (a camera) or
read (a file), and passed on as ``FrameResult.read_at_ms``. The outlets convert it to Lab
Streaming Layer's clock (``pylsl.local_clock()``) with one offset measured when the
outlets open; both are steady clocks (on Linux the same ``CLOCK_MONOTONIC``), so the
converted value is the capture time on LSL's clock, not the time the sample was sent.
JSON and OSC carry the same number as ``t``. (``timestamp_ms``, the CSV's time, is
Unix time for a camera and the position in the video for a file: neither is LSL's clock.)
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from liveaffect.labels import AU_COLUMNS, EXPRESSIONS, NUM_AUS, au_column

_LSL_CONFIGS = ("lsl_api.cfg", "~/lsl_api/lsl_api.cfg", "/etc/lsl_api/lsl_api.cfg")
_lsl_ready = False


def import_pylsl():
    """``pylsl``, with liblsl's log limited to warnings unless the user has an lsl_api.cfg.

    liblsl prints INFO lines to stderr at start-up; a user config (``LSLAPICFG`` or one of
    liblsl's usual places) is left in charge.
    """
    global _lsl_ready
    import pylsl

    if not _lsl_ready:
        _lsl_ready = True
        user_config = os.environ.get("LSLAPICFG") or any(
            os.path.isfile(os.path.expanduser(p)) for p in _LSL_CONFIGS
        )
        if not user_config:
            # an older liblsl without the call keeps its default log
            with contextlib.suppress(Exception):
                pylsl.set_config_content("[log]\nlevel = -1\n")
    return pylsl


def lsl_clock_offset_s() -> float:
    """``pylsl.local_clock() - time.monotonic()`` in seconds (the smallest of a few reads)."""
    pylsl = import_pylsl()

    best = None
    for _ in range(5):
        before = time.monotonic()
        lsl = pylsl.local_clock()
        after = time.monotonic()
        if best is None or after - before < best[0]:
            best = (after - before, lsl - (before + after) / 2.0)
    return best[1]


@dataclass(frozen=True)
class StreamMeta:
    """Shared by all outlets of a run.

    Attributes:
        model_name: the model card's name.
        model_version: the card's ``version`` if it has one, else ``sha256:`` and the first
            12 hex digits of the model file (changes whenever the weights change).
        au_thresholds: per-AU decision thresholds (``active_aus``).
        faces: face slots of the LSL outlet (``--stream-faces``).
        clock_offset_s: added to ``read_at_ms / 1000`` to get LSL's clock.
        expressions, aus: label names in the model's output order.
        weak_aus: the AUs (as in ``aus``) the card says are found poorly on new faces
            (``ModelCard.weak_aus``); the LSL description lists them.
    """

    model_name: str = "liveaffect-mtl"
    model_version: str = "unknown"
    au_thresholds: tuple[float, ...] = (0.5,) * NUM_AUS
    faces: int = 4
    clock_offset_s: float = 0.0
    expressions: tuple[str, ...] = EXPRESSIONS
    aus: tuple[str, ...] = AU_COLUMNS
    weak_aus: tuple[str, ...] = ()
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.faces < 1:
            raise ValueError(f"faces must be 1 or more, got {self.faces}")
        if len(self.au_thresholds) != len(self.aus):
            raise ValueError(f"au_thresholds needs {len(self.aus)} values")

    def capture_time_s(self, read_at_ms: float) -> float:
        """A frame's capture time on LSL's clock, in seconds, from its ``read_at_ms``."""
        return float(read_at_ms) / 1000.0 + self.clock_offset_s

    @classmethod
    def from_model(cls, model_path, faces: int = 4, source: str = "") -> StreamMeta:
        """Read the card next to a bundle or ``.keras`` file (no TensorFlow needed).

        Raises:
            liveaffect.bundle.BundleError: no such model, or an unreadable card.
        """
        from liveaffect.bundle import file_sha256, read_card, resolve_model_path

        model_file, card_file = resolve_model_path(model_path)
        card = read_card(card_file)
        version = card.version if card else ""
        return cls(
            model_name=card.name if card else Path(model_file).stem,
            model_version=version or f"sha256:{file_sha256(model_file)[:12]}",
            au_thresholds=tuple(float(t) for t in card.au_thresholds) if card else (0.5,) * 12,
            expressions=tuple(card.expressions) if card else EXPRESSIONS,
            aus=tuple(au_column(a) for a in card.aus) if card else AU_COLUMNS,
            weak_aus=card.weak_au_columns() if card else (),
            faces=faces,
            clock_offset_s=lsl_clock_offset_s(),
            source=source,
        )
