"""Where Aff-Wild2's files are: annotation, multi-task and image folders under a root.

Folder names are compared normalised (:func:`normalise`); the annotation folder may sit up
to two levels below the root, the image folders in the root, one level below it, or next
to the annotations. Images are listed once per folder, never checked one by one.
"""

from __future__ import annotations

from liveaffect.data import io
from liveaffect.data.io import DatasetError

TASK_FOLDERS: dict[str, str] = {
    "expr_recognition_challenge": "EXPR",
    "expr_classification_challenge": "EXPR",
    "expr_set": "EXPR",
    "va_estimation_challenge": "VA",
    "va_set": "VA",
    "au_detection_challenge": "AU",
    "au_set": "AU",
}
"""Task folder names (normalised: lower case, ``_`` for spaces) -> task."""

SPLIT_FOLDERS: dict[str, str] = {
    "train_set": "train",
    "training_set": "train",
    "validation_set": "validation",
}
"""Split folder names (normalised) -> Record.split."""

IMAGE_FOLDERS: tuple[str, ...] = ("cropped_aligned", "cropped_aligned_new_50_vids", "cropped")
"""Image folders in order of preference; a video is read from the first that has it."""

MTL_FILES: dict[str, str] = {
    "training_set_annotations.txt": "train",
    "validation_set_annotations.txt": "validation",
}


def normalise(name: str) -> str:
    """Folder name as compared: lower case, spaces and dashes as underscores."""
    return name.strip().lower().replace(" ", "_").replace("-", "_")


def base_video(name: str) -> str:
    """Recording name: ``130-25-1280x720_left`` -> ``130-25-1280x720``."""
    for suffix in ("_left", "_right"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _search(root: str, wanted, max_depth: int = 2) -> list[str]:
    """Folders at the shallowest depth (0..max_depth) where ``wanted(dirs, files)`` holds."""
    level = [root]
    skip = set(IMAGE_FOLDERS) | set(TASK_FOLDERS)
    for _ in range(max_depth + 1):
        hits: list[str] = []
        deeper: list[str] = []
        for folder in level:
            try:
                dirs, files = io.scan(folder)
            except OSError:
                continue
            if wanted(dirs, files):
                hits.append(folder)
                continue
            deeper += [
                io.join(folder, d)
                for d in dirs
                if not d.startswith(".") and normalise(d) not in skip
            ]
        if hits:
            return hits
        level = deeper
    return []


def find_annotation_root(root: str) -> str | None:
    """The folder holding the task folders: ``root`` itself or up to two levels below."""
    hits = _search(root, lambda dirs, _files: any(normalise(d) in TASK_FOLDERS for d in dirs))
    if len(hits) > 1:
        raise DatasetError(
            f"several Aff-Wild2 annotation folders under {root}: {', '.join(hits)}; "
            "pass the one to use as the dataset root"
        )
    return hits[0] if hits else None


def find_mtl_files(root: str) -> dict[str, str]:
    """``{split: path}`` of the multi-task release's annotation files under ``root``."""
    if not io.isdir(root):
        split = MTL_FILES.get(io.basename(root).lower())
        return {split: root} if split else {}
    hits = _search(root, lambda _dirs, files: any(f.lower() in MTL_FILES for f in files))
    if len(hits) > 1:
        raise DatasetError(
            f"several multi-task annotation folders under {root}: {', '.join(hits)}; "
            "pass the one to use as the dataset root"
        )
    if not hits:
        return {}
    _, files = io.scan(hits[0])
    return {MTL_FILES[f.lower()]: io.join(hits[0], f) for f in files if f.lower() in MTL_FILES}


def find_image_dirs(root: str, annotations: str | None = None) -> list[str]:
    """Image folders (``cropped_aligned`` ...) in ``root``, one level below it, or next to
    ``annotations``; ordered by :data:`IMAGE_FOLDERS` preference."""
    found: list[str] = []
    bases = [root] + ([io.dirname(annotations)] if annotations else [])
    for i, base in enumerate(bases):
        try:
            dirs, _ = io.scan(base)
        except OSError:
            continue
        for d in dirs:
            if normalise(d) in IMAGE_FOLDERS:
                found.append(io.join(base, d))
            elif i == 0 and not d.startswith("."):
                sub_dirs, _ = io.scan(io.join(base, d))
                found += [io.join(base, d, s) for s in sub_dirs if normalise(s) in IMAGE_FOLDERS]
    unique = list(dict.fromkeys(found))
    return sorted(unique, key=lambda p: IMAGE_FOLDERS.index(normalise(io.basename(p))))


class _Images:
    """Answers "which file is frame F of video V" after listing each folder once."""

    def __init__(self, image_dirs: list[str]) -> None:
        self._bases: list[tuple[str, set[str]]] = []
        for base in image_dirs:
            dirs, _ = io.scan(base)
            if len(dirs) == 1 and normalise(dirs[0]) == normalise(io.basename(base)):
                base = io.join(base, dirs[0])  # an archive unpacked into a folder of its name
                dirs, _ = io.scan(base)
            self._bases.append((base, set(dirs)))
        self._videos: dict[str, tuple[str, set[str]]] = {}
        self.missing_videos: set[str] = set()
        """Videos asked for that have no folder in any image folder."""

    def path(self, video: str, name: str) -> str | None:
        entry = self._videos.get(video)
        if entry is None:
            entry = ("", set())
            for base, videos in self._bases:
                if video in videos:
                    folder = io.join(base, video)
                    entry = (io.join(folder, ""), set(io.listdir(folder)))  # prefix ends in /
                    break
            else:
                self.missing_videos.add(video)
            self._videos[video] = entry
        prefix, names = entry
        return prefix + name if name in names else None


def image_index(root: str, annotations: str | None, image_dirs: list[str] | None) -> _Images:
    dirs = image_dirs if image_dirs is not None else find_image_dirs(root, annotations)
    if not dirs:
        raise DatasetError(f"no Aff-Wild2 image folder ({', '.join(IMAGE_FOLDERS)}) in {root}")
    return _Images(dirs)
