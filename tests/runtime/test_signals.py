"""StopSignals: a signal is recorded (the live loop stops after the frame), a second one
of the same kind interrupts at once; with ``interrupt=True`` (analyze) the first does."""

from __future__ import annotations

import os
import signal

import pytest

from liveaffect.runtime.signals import StopSignals

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX signals")


@pytest.mark.parametrize(
    ("signum", "reason", "status"),
    [
        (signal.SIGTERM, "sigterm", 143),
        (signal.SIGHUP, "sighup", 129),
        (signal.SIGINT, "interrupt", 130),
    ],
)
def test_first_signal_is_recorded_second_interrupts(signum, reason, status):
    with StopSignals() as signals:
        assert signals.reason() is None and signals.exit_status is None
        os.kill(os.getpid(), signum)
        assert signals.reason() == reason and signals.exit_status == status
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signum)
    assert signal.getsignal(signum) != signals._handle  # handlers restored


def test_interrupt_mode_stops_at_the_first_signal():
    with pytest.raises(KeyboardInterrupt), StopSignals(interrupt=True) as signals:
        os.kill(os.getpid(), signal.SIGTERM)
    assert signals.exit_status == 143 and signals.reason() == "sigterm"
