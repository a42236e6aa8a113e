"""Writing a file whole or not at all.

:func:`write_whole` writes to a temporary file beside the target and renames it over the
target only once every byte is written, so a full disk, a file-size limit or a crash never
leaves a cut-off file for a later run to trust, nor empties an older whole one; the
temporary file is removed on failure. The standard library has no such call (``os.replace``
is the atomic step; the temporary name, the clean-up and the error naming the target are
what this adds).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def write_whole(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` whole or not at all (missing folders are made).

    Raises:
        OSError: the file cannot be written, with ``path`` as its ``filename``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # processes may race here
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    return path
