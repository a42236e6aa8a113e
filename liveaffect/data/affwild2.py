"""Aff-Wild2 readers: the official per-task layout and the multi-task single-file release.

Layout (see AFFWILD2.md)::

    <root>/cropped_aligned/<video>/00001.jpg        (also cropped_aligned_new_50_vids/, cropped/)
    <root>/<annotations>/<task folder>/{Train_Set,Validation_Set}/<video>.txt
    <root>/.../{training,validation}_set_annotations.txt        (multi-task release)

``<annotations>`` may be any folder (``Third ABAW Annotations``, ``6th_ABAW_Annotations``,
``8th_ABAW_Annotations`` ...) found at most two levels below the root. Labels of one image
from different tasks are joined on (split, video folder, frame) into one :class:`Record`.
Images are listed once per folder, never checked one by one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from liveaffect.data import io
from liveaffect.data.affwild2_layout import (
    MTL_FILES,
    SPLIT_FOLDERS,
    TASK_FOLDERS,
    base_video,
    find_annotation_root,
    find_mtl_files,
    image_index,
    normalise,
)
from liveaffect.data.io import DatasetError
from liveaffect.data.records import Record
from liveaffect.labels import AU_MISSING, NUM_AUS, NUM_EXPRESSIONS, VA_MISSING

logger = logging.getLogger(__name__)

SOURCE = "affwild2"
SOURCE_MTL = "affwild2-mtl"

SPLITS = (None, "train", "validation")
_FIELDS = {"EXPR": 1, "VA": 2, "AU": NUM_AUS}
_SLOT = {"EXPR": 1, "VA": 2, "AU": 3}
_NAMED = 5
"""How many videos without an image folder :meth:`ReadStats.summary` names."""


@dataclass
class ReadStats:
    """What a read found, for logs and reports.

    Attributes:
        files: annotation files read.
        lines: label lines read (headers and trailing blank lines not counted).
        unlabelled: lines (per task) holding the missing-label value (-1 / -5).
        missing_images: labelled lines whose image file does not exist (skipped).
        labels: per task, labels kept (the image exists).
        records: records returned (one per image, tasks joined).
        videos_without_images: labelled videos whose image folder is in none of the image
            folders (all their frames are in ``missing_images``), sorted.
    """

    files: int = 0
    lines: int = 0
    unlabelled: int = 0
    missing_images: int = 0
    labels: dict[str, int] = field(default_factory=lambda: {"EXPR": 0, "VA": 0, "AU": 0})
    records: int = 0
    videos_without_images: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the log."""
        per_task = ", ".join(f"{task} {n}" for task, n in self.labels.items())
        line = (
            f"{self.records} records from {self.files} files, {self.lines} label lines "
            f"({per_task} kept; {self.unlabelled} unlabelled, "
            f"{self.missing_images} without an image, skipped)"
        )
        missing = self.videos_without_images
        if missing:  # a whole folder missing is an install problem, not a frame without a face
            named = ", ".join(missing[:_NAMED]) + (
                f" and {len(missing) - _NAMED} more" if len(missing) > _NAMED else ""
            )
            line += f"; {len(missing)} labelled video(s) have no image folder: {named}"
        return line


def _parse(task: str, fields: list[str], where: str):
    """Validate one line's fields; returns the label or None when it is the missing value."""
    try:
        if task == "EXPR":
            value = int(fields[0])
            if value == -1:
                return None
            if not 0 <= value < NUM_EXPRESSIONS:
                raise DatasetError(
                    f"{where}: expression {value} is outside 0..{NUM_EXPRESSIONS - 1} "
                    "(-1 = missing)"
                )
            return value
        if task == "VA":
            va = (float(fields[0]), float(fields[1]))
            if VA_MISSING in va:
                return None
            if not all(-1.0 <= v <= 1.0 for v in va):
                raise DatasetError(f"{where}: valence/arousal {va} outside [-1, 1] (-5 = missing)")
            return va
        au = tuple(int(v) for v in fields)
        if any(v not in (0, 1, AU_MISSING) for v in au):
            raise DatasetError(f"{where}: action units must be 0, 1 or -1, got {fields}")
        return None if all(v == AU_MISSING for v in au) else au
    except ValueError as exc:
        if isinstance(exc, DatasetError):
            raise
        raise DatasetError(f"{where}: {task} value is not a number: {','.join(fields)}") from None


_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def _lines(path: str, images_first: bool = False) -> list[str]:
    """The file's lines, trailing blank ones dropped, checked to start with a header: a
    first line of numbers is a label line, and with ``images_first`` (the multi-task
    release, whose rows start ``video/00001.jpg``) so is one whose first field names an
    image; either is an error rather than a label line silently read as the header."""
    lines = io.read_text(path).splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise DatasetError(f"{path}:1: empty annotation file, expected a header line")
    head = lines[0].split(",")[0].strip()
    if head.lstrip("-").replace(".", "", 1).isdigit():
        raise DatasetError(f"{path}:1: the header line is missing (found numbers)")
    if images_first and ("/" in head or "\\" in head or head.lower().endswith(_IMAGE_SUFFIXES)):
        raise DatasetError(f"{path}:1: the header line is missing (found the image {head!r})")
    return lines


def _read_task_file(path, task, video, split, images, joined, stats, cache) -> None:
    n_fields = _FIELDS[task]
    slot = _SLOT[task]
    stats.files += 1
    for k, line in enumerate(_lines(path)[1:], start=1):
        try:
            value = cache[line]  # label lines repeat a lot: parse each distinct text once
        except KeyError:
            where = f"{path}:{k + 1}"
            if not line.strip():
                raise DatasetError(f"{where}: empty line inside the file") from None
            fields = line.split(",")
            if len(fields) != n_fields:
                raise DatasetError(
                    f"{where}: expected {n_fields} {task} value(s), got {len(fields)}"
                ) from None
            value = cache[line] = _parse(task, fields, where)
        stats.lines += 1
        if value is None:
            stats.unlabelled += 1
            continue
        image = images.path(video, f"{k:05d}.jpg")
        if image is None:
            stats.missing_images += 1
            continue
        stats.labels[task] += 1
        joined.setdefault((split, video, k), [image, -1, None, None])[slot] = value


def _records(joined: dict, source: str, stats: ReadStats, images) -> list[Record]:
    records = [
        Record(
            path=image,
            expr=expr,
            va=va,
            au=au,
            source=source,
            video=base_video(video),
            frame=frame,
            split=split,
        )
        for (split, video, frame), (image, expr, va, au) in sorted(joined.items())
    ]
    stats.records = len(records)
    stats.videos_without_images = sorted(images.missing_videos)
    log = logger.warning if stats.missing_images else logger.info
    log("Aff-Wild2 (%s): %s", source, stats.summary())
    return records


def _check_split(split: str | None) -> None:
    if split not in SPLITS:
        raise DatasetError(f"Aff-Wild2 has the splits 'train' and 'validation', not {split!r}")


def read_affwild2_with_stats(
    root: str,
    split: str | None = None,
    *,
    annotations: str | None = None,
    image_dirs: list[str] | None = None,
) -> tuple[list[Record], ReadStats]:
    """Read the official per-task layout; labels of one image joined into one record.

    Args:
        root: dataset folder (local or ``gs://``) holding the images and the annotations.
        split: ``"train"``, ``"validation"`` or None for both. A frame labelled in one
            task's train set and another task's validation set gives one record per split.
        annotations: the annotations folder, when it is not to be searched for.
        image_dirs: image folders, when they are not to be searched for.

    Returns:
        Records sorted by (split, video, frame), and the read statistics.

    Raises:
        DatasetError: no annotations or images found, or a malformed line (``file:line``).
    """
    _check_split(split)
    if not io.isdir(root):
        raise DatasetError(f"Aff-Wild2 root {root} is not a folder")
    ann = annotations or find_annotation_root(root)
    if ann is None:
        raise DatasetError(
            f"no Aff-Wild2 annotations (a folder holding EXPR_Recognition_Challenge, "
            f"VA_Estimation_Challenge or AU_Detection_Challenge) in {root} or two levels below"
        )
    images = image_index(root, ann, image_dirs)
    stats, joined = ReadStats(), {}
    caches: dict[str, dict] = {task: {} for task in _FIELDS}
    task_dirs, _ = io.scan(ann)
    for task_dir in task_dirs:
        task = TASK_FOLDERS.get(normalise(task_dir))
        if task is None:
            continue
        split_dirs, _ = io.scan(io.join(ann, task_dir))
        for split_dir in split_dirs:
            this_split = SPLIT_FOLDERS.get(normalise(split_dir))
            if this_split is None or (split is not None and this_split != split):
                continue
            folder = io.join(ann, task_dir, split_dir)
            for name in io.scan(folder)[1]:
                if name.lower().endswith(".txt"):
                    path = io.join(folder, name)
                    _read_task_file(
                        path, task, name[:-4], this_split, images, joined, stats, caches[task]
                    )
    return _records(joined, SOURCE, stats, images), stats


def read_affwild2(root: str, split: str | None = None, **kwargs) -> list[Record]:
    """:func:`read_affwild2_with_stats` without the statistics (they are logged)."""
    return read_affwild2_with_stats(root, split, **kwargs)[0]


def read_mtl_with_stats(
    root: str, split: str | None = None, *, image_dirs: list[str] | None = None
) -> tuple[list[Record], ReadStats]:
    """Read the multi-task release: ``{training,validation}_set_annotations.txt``.

    Rows are ``video/00001.jpg,valence,arousal,expression,AU1,...,AU26`` (16 fields) with
    -5 / -1 / -1 for missing labels. ``root`` may be the folder or one of the files.

    Raises:
        DatasetError: files or images not found, or a malformed line (``file:line``).
    """
    _check_split(split)
    files = find_mtl_files(root)
    if not files:
        raise DatasetError(f"no {' or '.join(MTL_FILES)} in {root} or two levels below")
    base = root if io.isdir(root) else io.dirname(root)
    images = image_index(base, next(iter(files.values())), image_dirs)
    stats, joined = ReadStats(), {}
    for this_split, path in sorted(files.items()):
        if split is not None and this_split != split:
            continue
        stats.files += 1
        for k, line in enumerate(_lines(path, images_first=True)[1:], start=2):
            where = f"{path}:{k}"
            fields = line.split(",")
            if len(fields) != 4 + NUM_AUS:
                raise DatasetError(f"{where}: expected {4 + NUM_AUS} fields, got {len(fields)}")
            parts = fields[0].strip().replace("\\", "/").split("/")
            stem = parts[-1].rsplit(".", 1)[0]
            if len(parts) < 2 or not stem.isdigit():
                raise DatasetError(f"{where}: image {fields[0]!r} is not <video>/<frame>.jpg")
            labels = {
                "VA": _parse("VA", fields[1:3], where),
                "EXPR": _parse("EXPR", fields[3:4], where),
                "AU": _parse("AU", fields[4:], where),
            }
            stats.lines += 1
            stats.unlabelled += sum(v is None for v in labels.values())
            if all(v is None for v in labels.values()):
                continue
            image = images.path(parts[-2], parts[-1])
            if image is None:
                stats.missing_images += 1
                continue
            slots = joined.setdefault((this_split, parts[-2], int(stem)), [image, -1, None, None])
            for task, value in labels.items():
                if value is not None:
                    stats.labels[task] += 1
                    slots[_SLOT[task]] = value
    return _records(joined, SOURCE_MTL, stats, images), stats


def read_mtl(root: str, split: str | None = None, **kwargs) -> list[Record]:
    """:func:`read_mtl_with_stats` without the statistics (they are logged)."""
    return read_mtl_with_stats(root, split, **kwargs)[0]
