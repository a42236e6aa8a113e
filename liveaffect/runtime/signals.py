"""Stop a run cleanly when the process is asked to: Ctrl-C (SIGINT), SIGTERM and SIGHUP.

``docker stop``, systemd and ``timeout`` send SIGTERM; closing the terminal sends SIGHUP.
Inside :class:`StopSignals` the first such signal only records itself: the live loop
finishes the frame it is on, closes every writer (a playable video, a complete CSV),
prints its summary and the process exits with the shell's status for that signal
(128 + its number: 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP). A second signal of
the same kind stops at once (KeyboardInterrupt). SIGXFSZ (a file-size limit was hit) is
ignored, so the write fails with an error the sinks report instead of killing the process.

``StopSignals(interrupt=True)`` is for commands whose Ctrl-C path already stops cleanly
(``analyze``): there the first signal raises :class:`SignalInterrupt` (a
``KeyboardInterrupt``) at once, and the exit status still names the signal, as does
:func:`interrupt_reason` for the records of what was stopped.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

HANDLED = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))


class SignalInterrupt(KeyboardInterrupt):
    """The ``KeyboardInterrupt`` that :class:`StopSignals` raises for a signal.

    Attributes:
        signum: the signal that came.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def interrupt_reason(exc: BaseException) -> str:
    """What stopped a run, for a person: ``"Ctrl-C"``, ``"SIGTERM"`` or ``"SIGHUP"``."""
    signum = getattr(exc, "signum", signal.SIGINT)
    return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name


class StopSignals:
    """Context manager: records SIGINT/SIGTERM/SIGHUP instead of dying (main thread only).

    Example:
        >>> with StopSignals() as signals:  # doctest: +SKIP
        ...     summary = run_loop(source, pipeline, sinks, stop=signals.reason)
        >>> status = signals.exit_status  # 143 after SIGTERM, None when none came
    """

    def __init__(self, interrupt: bool = False) -> None:
        self.received: int | None = None
        self.interrupt = interrupt
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        asked_twice = self.received == signum
        self.received = signum
        if asked_twice or self.interrupt:  # stop now
            raise SignalInterrupt(signum)

    def reason(self) -> str | None:
        """``"interrupt"`` (Ctrl-C), ``"sigterm"`` or ``"sighup"`` once a signal came, else
        None (the live loop's ``stop``)."""
        if not self.received:
            return None
        if self.received == signal.SIGINT:
            return "interrupt"
        return signal.Signals(self.received).name.lower()

    @property
    def exit_status(self) -> int | None:
        """128 + the signal's number, or None when no signal came."""
        return 128 + self.received if self.received else None

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in HANDLED:
                self._previous[sig] = signal.signal(sig, self._handle)
            if hasattr(signal, "SIGXFSZ"):
                self._previous[signal.SIGXFSZ] = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()
