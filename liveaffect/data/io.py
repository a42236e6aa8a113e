"""A tiny file layer: local paths through ``os``, URLs (``gs://...``) through ``tf.io.gfile``.

Local paths never import TensorFlow. A path with a scheme (``gs://``, ``s3://``,
``hdfs://`` ...) is handed to ``tensorflow.io.gfile``, imported only when such a
path is first used, so the readers work on a bucket with the same code.
"""

from __future__ import annotations

import os
import re
from typing import IO, Any

from liveaffect.preprocess import IMAGE_SUFFIXES

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_FILE_SUFFIXES = (*IMAGE_SUFFIXES, ".txt", ".csv", ".json")


class DatasetError(ValueError):
    """A dataset root that is missing, unrecognised or malformed.

    Messages about a bad line read ``file:line: what is wrong``.
    """


def is_url(path: str) -> bool:
    """True when ``path`` has a scheme (``gs://bucket/x``) rather than being a local path."""
    return bool(_URL.match(str(path)))


def _gfile() -> Any:
    try:
        import tensorflow as tf
    except ImportError as exc:  # pragma: no cover - tensorflow is a project requirement
        raise DatasetError("reading gs:// and other URLs needs TensorFlow installed") from exc
    return tf.io.gfile


def join(a: str, *parts: str) -> str:
    """Join path parts with ``/`` for URLs and ``os.path.join`` for local paths."""
    if is_url(a):
        out = a
        for part in parts:
            out = out.rstrip("/") + "/" + part.lstrip("/")
        return out
    return os.path.join(a, *parts)


def dirname(path: str) -> str:
    """The folder that holds ``path`` (works for URLs too)."""
    if is_url(path):
        head = path.rstrip("/").rsplit("/", 1)[0]
        return path if head.endswith(":/") else head
    return os.path.dirname(os.path.abspath(path))


def basename(path: str) -> str:
    """The last component of ``path``, ignoring a trailing slash."""
    return str(path).rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1]


def exists(path: str) -> bool:
    """True when a file or folder exists at ``path``."""
    if is_url(path):
        return bool(_gfile().exists(path))
    return os.path.exists(path)


def isdir(path: str) -> bool:
    """True when ``path`` is a folder."""
    if is_url(path):
        return bool(_gfile().isdir(path))
    return os.path.isdir(path)


def listdir(path: str) -> list[str]:
    """Sorted names (not paths) of the entries of folder ``path``."""
    if is_url(path):
        return sorted({name.rstrip("/") for name in _gfile().listdir(path)})
    return sorted(os.listdir(path))


def scan(path: str) -> tuple[list[str], list[str]]:
    """List a folder once: ``(sorted subfolder names, sorted file names)``.

    Locally this is one ``os.scandir``. On a bucket, entries that ``listdir`` returns
    with a trailing ``/`` are folders; only where the store marks no folder that way
    are entries other than images and text files asked one by one with ``isdir``.
    """
    dirs: list[str] = []
    files: list[str] = []
    if is_url(path):
        gfile = _gfile()
        names = gfile.listdir(path)
        marks_dirs = any(name.endswith("/") for name in names)  # GCS does, others may not
        for name in names:
            if name.endswith("/"):
                dirs.append(name.rstrip("/"))
            elif marks_dirs or name.lower().endswith(_FILE_SUFFIXES):
                files.append(name)
            elif gfile.isdir(join(path, name)):
                dirs.append(name)
            else:
                files.append(name)
    else:
        with os.scandir(path) as entries:
            for entry in entries:
                (dirs if entry.is_dir() else files).append(entry.name)
    return sorted(dirs), sorted(files)


def open_text(path: str) -> IO[str]:
    """Open a UTF-8 text file for reading (a BOM is dropped; CRLF reads as ``\\n``)."""
    if is_url(path):
        import io

        return io.StringIO(read_text(path))
    return open(path, encoding="utf-8-sig", newline=None)


def read_text(path: str) -> str:
    """The whole text of a UTF-8 file, BOM dropped."""
    if is_url(path):
        data = read_bytes(path)
        return data.decode("utf-8-sig")
    with open(path, encoding="utf-8-sig", newline=None) as f:
        return f.read()


def read_bytes(path: str) -> bytes:
    """The raw bytes of a file."""
    if is_url(path):
        with _gfile().GFile(path, "rb") as f:
            return f.read()
    with open(path, "rb") as f:
        return f.read()


# -- writing (batch analysis writes its outputs through these, local or gs://) -----------
def makedirs(path: str) -> None:
    """Create folder ``path`` and its parents (nothing to do when it exists)."""
    if is_url(path):
        _gfile().makedirs(path)
    else:
        os.makedirs(path, exist_ok=True)


def copy_file(local_path: str, dest: str) -> None:
    """Copy a local file to ``dest`` (a local path or a URL), replacing what is there."""
    if is_url(dest):
        _gfile().copy(local_path, dest, overwrite=True)
    else:
        import shutil

        shutil.copyfile(local_path, dest)


def rename(src: str, dest: str) -> None:
    """Move ``src`` to ``dest`` on the same store, replacing ``dest`` (atomic on local disks)."""
    if is_url(src):
        _gfile().rename(src, dest, overwrite=True)
    else:
        os.replace(src, dest)


def remove(path: str) -> None:
    """Delete the file ``path``; a missing file is not an error."""
    try:
        if is_url(path):
            _gfile().remove(path)
        else:
            os.remove(path)
    except Exception:  # OSError locally, tf.errors.NotFoundError on a bucket
        if exists(path):
            raise
