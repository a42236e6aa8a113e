"""The start-up silencer drops the native libraries' chatter but keeps our own warnings."""

from __future__ import annotations

import os

from liveaffect.runtime.quiet import quiet_native_stderr


def test_native_chatter_is_dropped_and_warning_lines_are_kept(capfd):
    with quiet_native_stderr():
        os.write(2, b"I0000 00:00 port.cc:153] oneDNN custom operations are on\n")
        os.write(2, b"warning: engine tflite: cannot read it; using keras\n")  # sys.stderr's fd
        os.write(2, b"E0000 cuda_platform.cc:52] failed call to cuInit\n")
    assert capfd.readouterr().err == "warning: engine tflite: cannot read it; using keras\n"


def test_disabled_it_passes_everything(capfd):
    with quiet_native_stderr(enabled=False):
        os.write(2, b"I0000 chatter\n")
    assert capfd.readouterr().err == "I0000 chatter\n"
