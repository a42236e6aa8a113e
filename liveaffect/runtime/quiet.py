"""Silence the native libraries' start-up chatter (TensorFlow, absl, LiteRT, CUDA probes).

TensorFlow and LiteRT print from C++ straight to file descriptor 2 while they load: about
eight lines of oneDNN notes, "could not find cuda drivers" and a ``cuInit`` error on a
CPU-only machine, which read as failures. ``TF_CPP_MIN_LOG_LEVEL`` no longer reaches all
of them, so :func:`quiet_native_stderr` points descriptor 2 at ``/dev/null`` while the
model and detector load. Python exceptions still propagate and are reported by the
caller; ``--verbose`` turns this off.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_native_stderr(enabled: bool = True) -> Iterator[None]:
    """Within the block, anything written to file descriptor 2 is dropped."""
    if not enabled:
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
