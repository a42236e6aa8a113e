"""Where results go: ``--out`` on a local disk, NFS, or a bucket (``gs://``).

Every file is written under a temporary name and renamed when complete, so an
interrupted run (Ctrl-C, a killed worker, a crash) never leaves a half file that looks
whole. ``summary.json`` is published last: a video folder is complete when it holds a
``summary.json`` that says so and names the same source file (path, size, modification
time). Local paths go through ``os``; URLs through :mod:`liveaffect.data.io`
(``tf.io.gfile``), the layer the dataset readers use, so a bucket needs no other code.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from typing import Any

from liveaffect.data import io

SUMMARY_JSON = "summary.json"
FACES_CSV = "faces.csv"
REPORT_PNG = "report.png"
SUMMARY_CSV = "summary.csv"
VIDEO_FILES = (FACES_CSV, REPORT_PNG, SUMMARY_JSON)
"""The files of a complete video folder."""
_PARTIAL = ".partial-"


def source_stamp(path: str) -> dict[str, Any]:
    """What identifies a source video: its path, size and modification time."""
    st = os.stat(path)
    return {"path": str(path), "size": int(st.st_size), "mtime": round(st.st_mtime, 3)}


def _partial_name(filename: str) -> str:
    return f".{filename}{_PARTIAL}{os.getpid()}-{uuid.uuid4().hex[:8]}"


class OutputStore:
    """The ``--out`` folder.

    Args:
        root: a local folder (created if needed) or a URL such as ``gs://bucket/run1``.
    """

    def __init__(self, root: str) -> None:
        self.root = str(root)
        self.remote = io.is_url(self.root)
        if not self.remote:
            self.root = os.path.abspath(self.root)
        io.makedirs(self.root)

    def video_dir(self, name: str) -> str:
        """The folder of one video's results."""
        return io.join(self.root, name)

    def path(self, name: str, filename: str) -> str:
        """A file in one video's folder."""
        return io.join(self.video_dir(name), filename)

    # -- completion -----------------------------------------------------------------------
    def load_summary(self, name: str) -> dict[str, Any] | None:
        """The video's ``summary.json``, or None when there is none (or it is unreadable)."""
        path = self.path(name, SUMMARY_JSON)
        try:
            if not io.exists(path):
                return None
            return json.loads(io.read_text(path))
        except (OSError, ValueError):
            return None
        except Exception:  # a bucket's own errors
            return None

    def source_path(self, name: str) -> str | None:
        """The path of the video whose ``summary.json`` is in folder ``name``, or None."""
        summary = self.load_summary(name)
        source = summary.get("source") if isinstance(summary, dict) else None
        return source.get("path") if isinstance(source, dict) else None

    def completed(self, name: str, stamp: dict[str, Any]) -> dict[str, Any] | None:
        """The summary of a complete earlier run on the same source file, else None."""
        summary = self.load_summary(name)
        if not summary or summary.get("status") != "ok" or summary.get("source") != stamp:
            return None
        if not all(io.exists(self.path(name, f)) for f in VIDEO_FILES):
            return None
        return summary

    # -- writing --------------------------------------------------------------------------
    def begin(self, name: str) -> str:
        """Make the video's folder, drop partial files an interrupted run left there, and
        return a local scratch folder where its files are written before publishing."""
        folder = self.video_dir(name)
        io.makedirs(folder)
        self._drop_partials(folder)
        if self.remote:
            return tempfile.mkdtemp(prefix=f"liveaffect-{name}-")
        return folder

    def _drop_partials(self, folder: str) -> None:
        for entry in io.listdir(folder):
            if entry.startswith(".") and _PARTIAL in entry:
                io.remove(io.join(folder, entry))

    def abandon(self, name: str) -> None:
        """Remove the temporary files a stopped or killed run on this video left in its
        folder (and the folder too when that leaves a local one empty)."""
        folder = self.video_dir(name)
        if not io.isdir(folder):
            return
        self._drop_partials(folder)
        if not self.remote:
            with contextlib.suppress(OSError):
                os.rmdir(folder)  # only when empty

    def scratch_file(self, scratch: str, filename: str) -> str:
        """A temporary local path for ``filename`` inside ``scratch``."""
        return os.path.join(scratch, _partial_name(filename))

    def publish(self, name: str, local_tmp: str, filename: str) -> str:
        """Move a finished temporary file to its final name in the video's folder."""
        dest = self.path(name, filename)
        if self.remote:
            remote_tmp = self.path(name, _partial_name(filename))
            io.copy_file(local_tmp, remote_tmp)
            io.rename(remote_tmp, dest)
            os.remove(local_tmp)
        else:
            io.rename(local_tmp, dest)
        return dest

    def discard(self, scratch: str) -> None:
        """Remove what an unfinished video left in its scratch folder."""
        if self.remote:
            shutil.rmtree(scratch, ignore_errors=True)
            return
        for entry in os.listdir(scratch) if os.path.isdir(scratch) else []:
            if entry.startswith(".") and _PARTIAL in entry:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(os.path.join(scratch, entry))
        with contextlib.suppress(OSError):
            os.rmdir(scratch)  # only when empty: a video that never completed

    def finish(self, scratch: str) -> None:
        """Drop a remote run's local scratch folder (a local one is the video folder)."""
        if self.remote:
            shutil.rmtree(scratch, ignore_errors=True)

    def write_text(self, filename: str, text: str) -> str:
        """Write a file at the top of ``--out`` (``summary.csv``), temporary name first."""
        dest = io.join(self.root, filename)
        scratch = tempfile.mkdtemp(prefix="liveaffect-") if self.remote else self.root
        local = self.scratch_file(scratch, filename)
        with open(local, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        if self.remote:
            tmp = io.join(self.root, _partial_name(filename))
            io.copy_file(local, tmp)
            io.rename(tmp, dest)
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            os.replace(local, dest)
        return dest
