"""Silence the native libraries' start-up chatter (TensorFlow, absl, LiteRT, CUDA probes).

TensorFlow and LiteRT print from C++ straight to file descriptor 2 while they load: about
eight lines of oneDNN notes, "could not find cuda drivers" and a ``cuInit`` error on a
CPU-only machine, which read as failures. ``TF_CPP_MIN_LOG_LEVEL`` no longer reaches all
of them, so :func:`quiet_native_stderr` points descriptor 2 at ``/dev/null`` while the
model and detector load. Python exceptions still propagate and are reported by the
caller; the project's own ``warning: `` lines written meanwhile (an engine that ``auto``
could not build, say) are shown when the block ends; ``--verbose`` turns this off.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_native_stderr(enabled: bool = True) -> Iterator[None]:
    """Within the block, anything written to file descriptor 2 is dropped, except the
    lines that start with ``warning: ``: those are written to it when the block ends."""
    if not enabled:
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as kept:
        try:
            os.dup2(kept.fileno(), 2)
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            kept.seek(0)
            lines = kept.read().decode("utf-8", "replace").splitlines()
    for line in lines:
        if line.startswith("warning: "):
            print(line, file=sys.stderr, flush=True)
