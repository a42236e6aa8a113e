"""Checking a command's output files before its work starts.

An evaluation or an export can run for minutes; a path it cannot write should stop it at
once with one line, not with a traceback once the work is done.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from liveaffect.errors import CliError


def check_output_file(path: str | os.PathLike | None, flag: str) -> None:
    """Raise :class:`CliError` now if ``path`` cannot be written as a file.

    Missing folders are fine (the writers create them), as long as the nearest existing
    one is a folder this process can create files in; ``gs://`` and other URLs are left to
    their writer.

    Args:
        path: the output file, or None (nothing to check).
        flag: the option it came from (``--json``), for the message.
    """
    if path is None or "://" in str(path):
        return
    path = Path(path)
    if path.is_dir():
        raise CliError(f"{flag} {path} is a folder, not a file")
    if path.exists() and not os.access(path, os.W_OK):
        raise CliError(f"{flag} {path}: the file is read-only")
    _check_nearest_folder(path, path.parent, flag)


def check_output_folder(path: str | os.PathLike | None, flag: str) -> None:
    """Raise :class:`CliError` now if ``path`` cannot be made or written as a folder.

    As :func:`check_output_file`, for a folder the command fills (``train --out``): an
    existing folder must take new files, a missing one must have as its nearest existing
    parent a folder this process can create files in.
    """
    if path is None or "://" in str(path):
        return
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise CliError(f"{flag} {path} is a file, not a folder")
    _check_nearest_folder(path, folder, flag)


def _check_nearest_folder(path, folder: Path, flag: str) -> None:
    """``folder`` or, if it does not exist yet, its nearest existing parent must be a folder
    this process can create files in (the writers make the missing ones)."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise CliError(f"{flag} {path}: {folder} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise CliError(f"{flag} {path}: cannot write in {folder} ({exc.strerror})") from None


def check_not_an_input(path: str | os.PathLike | None, flag: str, inputs) -> None:
    """Raise :class:`CliError` now if the output ``path`` is one of the files the command
    reads (``inputs``: paths; folders and missing paths among them are ignored)."""
    if path is None or "://" in str(path):
        return
    target = Path(path).resolve()
    for item in inputs:
        if item is not None and Path(item).is_file() and Path(item).resolve() == target:
            raise CliError(f"{flag} {path} would overwrite a file this command reads")
