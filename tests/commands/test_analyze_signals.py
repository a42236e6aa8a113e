"""`analyze` stops on SIGTERM and SIGHUP through its Ctrl-C path and exits 128 + the signal."""

from __future__ import annotations

import os
import signal
import time

import cv2
import numpy as np
import pytest

from liveaffect.cli import main
from liveaffect.runtime.signals import StopSignals, interrupt_reason


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signal_stops_analyze_with_its_exit_status(
    monkeypatch, tmp_path, capsys, tiny_bundle, signum, status
):
    from liveaffect.analysis import archive

    clip = tmp_path / "in" / "clip.avi"
    clip.parent.mkdir()
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(3):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()

    reasons = []

    def interrupted_archive(jobs, settings, out, force, quiet, make_analyzer):
        result = archive.ArchiveResult()
        try:  # what analyze_archive does on Ctrl-C: record it, write the summary, return
            os.kill(os.getpid(), signum)
            time.sleep(5)
        except KeyboardInterrupt as exc:
            result.interrupted = True
            reasons.append(interrupt_reason(exc))
        return result

    monkeypatch.setattr(archive, "analyze_archive", interrupted_archive)
    argv = ["analyze", str(clip), "--out", str(tmp_path / "out"), "--model", str(tiny_bundle)]
    assert main(argv) == status
    assert reasons == [signal.Signals(signum).name]  # what summary.csv records as the reason
    assert "Traceback" not in capsys.readouterr().err
    handler = signal.getsignal(signum)  # the command's handler was taken down again
    assert not isinstance(getattr(handler, "__self__", None), StopSignals)


def test_a_plain_ctrl_c_is_named_ctrl_c():
    assert interrupt_reason(KeyboardInterrupt()) == "Ctrl-C"
