"""Which videos to analyse, and the output folder name each one gets.

Inputs are video files, folders (searched recursively for video files) or glob patterns
(``sessions/**/*.mp4``). Every video is found once, in a stable order, and gets a folder
name under ``--out`` that no other video of the run shares.
"""

from __future__ import annotations

import glob
import hashlib
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

VIDEO_SUFFIXES = (
    ".mp4",
    ".m4v",
    ".mov",
    ".avi",
    ".mkv",
    ".webm",
    ".mpg",
    ".mpeg",
    ".wmv",
    ".flv",
    ".ts",
    ".mts",
    ".3gp",
)
"""File endings treated as videos when a folder or a pattern is searched."""

_GLOB_CHARS = set("*?[")


class InputError(ValueError):
    """An input that names nothing (no such file, an empty folder, a pattern without match)."""


@dataclass(frozen=True)
class VideoJob:
    """One video to analyse.

    Attributes:
        path: the video file (absolute).
        name: its output folder under ``--out`` (the file stem; made unique when two
            videos of the run share a stem).
    """

    path: str
    name: str


def is_video(path: str | os.PathLike) -> bool:
    """True when the file name ends like a video (see :data:`VIDEO_SUFFIXES`)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def _folder_videos(folder: Path) -> list[Path]:
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(root) / f for f in sorted(files) if is_video(f) and not f.startswith(".")]
    return found


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Video files named by ``inputs``, in order of the inputs, each file once.

    A file is taken as given whatever its ending (it may still fail to decode); folders
    and patterns contribute only files with a video ending.

    Raises:
        InputError: an input that is not an existing file or folder and matches nothing,
            or no video at all.
    """
    seen: dict[str, Path] = {}
    for text in inputs:
        path = Path(text).expanduser()
        if path.is_file():
            candidates = [path]
        elif path.is_dir():
            candidates = _folder_videos(path)
            if not candidates:
                raise InputError(f"no video files in folder {text}")
        elif _GLOB_CHARS & set(text):
            matches = sorted(glob.glob(os.path.expanduser(text), recursive=True))
            candidates = [Path(m) for m in matches if Path(m).is_file() and is_video(m)]
            if not candidates:
                raise InputError(f"no video file matches {text}")
        else:
            raise InputError(f"no such file or folder: {text}")
        for candidate in candidates:
            seen.setdefault(str(candidate.resolve()), candidate.resolve())
    if not seen:
        raise InputError("no video to analyse")
    return list(seen.values())


def plain_name(video: str | os.PathLike) -> str:
    """A video's folder name when no other video claims it: the file stem (``clip``)."""
    return Path(video).stem or Path(video).name


def hashed_name(video: str | os.PathLike) -> str:
    """A video's folder name when its stem is shared: the stem plus a short hash of the
    path (``clip-3f2a9c1d``)."""
    return plain_name(video) + "-" + hashlib.sha1(str(video).encode()).hexdigest()[:8]


def make_jobs(videos: list[Path]) -> list[VideoJob]:
    """Give each video its output folder name: the stem, plus a short hash of the path
    for stems that several videos share (``clip`` and ``clip-3f2a9c1d``) and for a stem that
    would hide the folder (``.clip``) or take the name of ``--out``'s own ``summary.csv``."""
    from liveaffect.analysis.storage import SUMMARY_CSV

    stems = Counter(v.stem for v in videos)
    jobs = []
    for video in videos:
        plain = plain_name(video)
        clash = stems[video.stem] > 1 or plain == SUMMARY_CSV or plain.startswith(".")
        name = hashed_name(video) if clash else plain
        jobs.append(VideoJob(path=str(video), name=name))
    return jobs


def find_jobs(inputs: list[str]) -> list[VideoJob]:
    """:func:`expand_inputs` then :func:`make_jobs`."""
    return make_jobs(expand_inputs(inputs))
