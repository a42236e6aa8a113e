"""Still-image datasets: class folders (FER2013 style) and CSV manifests (DiffusionFER style).

Class folders::

    root/<class>/*.jpg                 or   root/{train,val,valid,validation,test}/<class>/*.jpg

Folder names in any common spelling (``angry``, ``Anger``, ``happy`` ...) map through
:func:`liveaffect.labels.expression_index`; a folder of an unknown class (``contempt``) is
skipped with a warning that names it and counts its images.

CSV manifests: a ``path`` column (relative to the CSV's folder, or absolute) and any of
``expression`` (name or index), ``valence``, ``arousal``, ``AU1``..``AU26`` (``AU01``,
``au_1`` ...), ``split`` and ``video``; an empty cell is a missing label, other columns are
ignored. For still images ``Record.video`` is the image path, so splitting by video is
splitting by image. ``group_by="subject"`` (any column name) makes holdout splits keep all
rows of one value of that column on one side (``Record.group``): CK+'s three frames of a
sequence, and a subject's several sequences, are near duplicates.
"""

from __future__ import annotations

import csv
import io as _stdio
import logging
import os
from collections import Counter

from liveaffect.data import io
from liveaffect.data.io import DatasetError
from liveaffect.data.records import Record
from liveaffect.labels import (
    AU_MISSING,
    EXPR_MISSING,
    NUM_AUS,
    NUM_EXPRESSIONS,
    VA_MISSING,
    au_index,
    expression_index,
)
from liveaffect.preprocess import IMAGE_SUFFIXES

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = IMAGE_SUFFIXES
"""Every still-image format OpenCV's ``imread`` decodes (the file's contents decide)."""
SPLITS = (None, "train", "validation", "test")
_PATH_COLUMNS = ("path", "image", "image_path", "file", "filename")
_EXPR_COLUMNS = ("expression", "expr", "label", "emotion", "class")


def split_name(folder: str) -> str | None:
    """``train``/``training`` -> ``train``; ``val*`` -> ``validation``; ``test*`` -> ``test``."""
    key = folder.strip().lower()
    if key in ("train", "training"):
        return "train"
    if key.startswith("val"):
        return "validation"
    if key in ("test", "testing"):
        return "test"
    return None


def _check_split(split: str | None) -> None:
    if split not in SPLITS:
        raise DatasetError(f"split must be 'train', 'validation', 'test' or None, not {split!r}")


def _images(names: list[str]) -> list[str]:
    return [n for n in names if not n.startswith(".") and n.lower().endswith(IMAGE_EXTENSIONS)]


def has_class_folders(root: str) -> bool:
    """True when ``root`` holds class folders, or split folders that hold class folders."""
    dirs, _ = io.scan(root)
    if any(expression_index(d) is not None for d in dirs):
        return True
    for d in dirs:
        if split_name(d) is not None:
            sub, _ = io.scan(io.join(root, d))
            if any(expression_index(s) is not None for s in sub):
                return True
    return False


def _read_classes(folder: str, split: str, source: str) -> list[Record]:
    records: list[Record] = []
    dirs, _ = io.scan(folder)
    for name in dirs:
        if name.startswith("."):
            continue
        class_dir = io.join(folder, name)
        files = _images(io.listdir(class_dir))
        index = expression_index(name)
        if index is None:
            if files:
                logger.warning(
                    "%s: skipped %d images of unknown class %r", class_dir, len(files), name
                )
            continue
        for file in files:
            path = io.join(class_dir, file)
            records.append(Record(path=path, expr=index, source=source, video=path, split=split))
    return records


def read_class_folders(root: str, split: str | None = None, source: str = "") -> list[Record]:
    """Read ``root/<class>/*`` or ``root/<split>/<class>/*`` images.

    Args:
        root: dataset folder (local or ``gs://``).
        split: keep only this split folder (``train``, ``validation``, ``test``); None = all.
            A root without split folders only accepts None.
        source: Record.source; default :func:`source_name` of the root.

    Raises:
        DatasetError: missing root, no class folders, or ``split`` asked of an unsplit root.
    """
    _check_split(split)
    if not io.isdir(root):
        raise DatasetError(f"class-folder root {root} is not a folder")
    source = source or source_name(root)
    dirs, _ = io.scan(root)
    split_dirs = [(d, split_name(d)) for d in dirs if split_name(d) and expression_index(d) is None]
    if not split_dirs:
        if split is not None:
            raise DatasetError(
                f"{root} has no train/val/test folders, so split={split!r} cannot be read; "
                "read it with split=None and split it with liveaffect.data.splits"
            )
        records = _read_classes(root, "", source)
    else:
        records = []
        for folder, this_split in split_dirs:
            if split is None or this_split == split:
                records += _read_classes(io.join(root, folder), this_split, source)
    if not records and not split_dirs:
        raise DatasetError(f"no images in class folders under {root}")
    return records


def _header_index(header: list[str], names: tuple[str, ...]) -> int | None:
    lowered = [h.strip().lower() for h in header]
    for name in names:
        if name in lowered:
            return lowered.index(name)
    return None


def _number(text: str, what: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise DatasetError(f"{where}: {what} {text!r} is not a number") from None


def source_name(path: str) -> str:
    """How a model card names a source: the last two parts of its path
    (``fer2013/train``, ``ckplus_au/labels.csv``); the last alone is often ``train`` or
    ``labels.csv``, which names no dataset and merges two CSVs of one folder."""
    parts = [p for p in str(path).replace("\\", "/").rstrip("/").split("/") if p]
    return "/".join(parts[-2:]) or str(path)


def _row_record(row, cols, where, base, split_filter, source) -> tuple[Record | None, str]:
    """One manifest row -> (record or None, unknown expression name or "")."""
    cell = lambda i: row[i].strip() if i is not None and i < len(row) else ""  # noqa: E731
    path = cell(cols["path"])
    if not path:
        raise DatasetError(f"{where}: empty path")
    if not (io.is_url(path) or os.path.isabs(path)):
        path = io.join(base, path)
    split = split_name(cell(cols["split"])) or cell(cols["split"]).lower()
    if split_filter is not None and split != split_filter:
        return None, ""
    expr, unknown = EXPR_MISSING, ""
    text = cell(cols["expr"])
    if text and text != str(EXPR_MISSING):
        index = expression_index(text)
        if index is not None:
            expr = index
        elif text.lstrip("+-").replace(".", "", 1).isdigit():  # a number out of range
            raise DatasetError(
                f"{where}: expression {text!r} must be a class index 0-{NUM_EXPRESSIONS - 1} "
                f"or {EXPR_MISSING} (no label)"
            )
        else:
            unknown = text  # a class name this project does not know: counted, warned
    va = None
    v_text, a_text = cell(cols["valence"]), cell(cols["arousal"])
    if v_text and a_text:
        v = _number(v_text, "valence", where)
        a = _number(a_text, "arousal", where)
        if VA_MISSING not in (v, a):
            if not (-1.0 <= v <= 1.0 and -1.0 <= a <= 1.0):
                raise DatasetError(f"{where}: valence/arousal ({v}, {a}) outside [-1, 1]")
            va = (v, a)
    au = None
    if cols["au"]:
        values = [AU_MISSING] * NUM_AUS
        for i, col in cols["au"].items():
            text = cell(col)
            if text:
                value = _number(text, "action unit", where)
                if value not in (0, 1, AU_MISSING):
                    raise DatasetError(f"{where}: action unit {text!r} must be 0, 1 or -1")
                values[i] = int(value)
        au = tuple(values) if any(v != AU_MISSING for v in values) else None
    if expr == EXPR_MISSING and va is None and au is None:
        return None, unknown
    video = cell(cols["video"]) or path
    group = cell(cols["group"])
    if cols["group"] is not None and not group:
        raise DatasetError(f"{where}: empty group cell (the manifest's group_by column)")
    record = Record(
        path=path, expr=expr, va=va, au=au, source=source, video=video, split=split, group=group
    )
    return record, unknown


def read_csv_manifest(
    path: str, split: str | None = None, source: str = "", group_by: str | None = None
) -> list[Record]:
    """Read a CSV manifest; rows whose image file does not exist are counted and skipped.

    Args:
        path: the ``.csv`` file (local or ``gs://``).
        split: keep rows whose ``split`` column says this; needs a ``split`` column.
        source: Record.source; default :func:`source_name` of the CSV.
        group_by: a column whose value becomes ``Record.group`` (what holdout splits keep
            together, e.g. ``subject``); None = split by ``video`` (or image).

    Raises:
        DatasetError: no ``path`` column, a malformed cell (``file:line``), ``split``
            asked of a manifest without a ``split`` column, or a ``group_by`` column that
            is missing or has an empty cell.
    """
    _check_split(split)
    if not io.exists(path):
        raise DatasetError(f"CSV manifest {path} does not exist")
    base = io.dirname(path)
    source = source or source_name(path)
    rows = list(csv.reader(_stdio.StringIO(io.read_text(path))))
    if not rows:
        raise DatasetError(f"{path}:1: empty CSV, expected a header")
    header = rows[0]
    cols = {
        "path": _header_index(header, _PATH_COLUMNS),
        "expr": _header_index(header, _EXPR_COLUMNS),
        "valence": _header_index(header, ("valence",)),
        "arousal": _header_index(header, ("arousal",)),
        "split": _header_index(header, ("split",)),
        "video": _header_index(header, ("video",)),
        "group": _header_index(header, (group_by.strip().lower(),)) if group_by else None,
        "au": {au_index(h): i for i, h in enumerate(header) if au_index(h) is not None},
    }
    if cols["path"] is None:
        raise DatasetError(f"{path}:1: no path column (one of {', '.join(_PATH_COLUMNS)})")
    if group_by and cols["group"] is None:
        raise DatasetError(
            f"{path}:1: no {group_by!r} column to group by (columns: {', '.join(header)})"
        )
    if split is not None and cols["split"] is None:
        raise DatasetError(
            f"{path} has no split column, so split={split!r} cannot be read; "
            "read it with split=None and split it with liveaffect.data.splits"
        )
    records: list[Record] = []
    unknown: Counter[str] = Counter()
    for line, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise DatasetError(
                f"{path}:{line}: {len(row)} fields, but the header has {len(header)} "
                "(a missing or extra comma? quote cells that hold commas)"
            )
        record, bad = _row_record(row, cols, f"{path}:{line}", base, split, source)
        if bad:
            unknown[bad] += 1
        if record is not None:
            records.append(record)
    for name, n in unknown.items():
        logger.warning("%s: %d rows of unknown expression %r (expression ignored)", path, n, name)
    return _existing(records, path)


def _existing(records: list[Record], where: str) -> list[Record]:
    """Drop records whose image is missing, listing each folder once."""
    listed: dict[str, set[str]] = {}
    kept = []
    for record in records:
        folder = io.dirname(record.path)
        if folder not in listed:
            listed[folder] = set(io.listdir(folder)) if io.isdir(folder) else set()
        if io.basename(record.path) in listed[folder]:
            kept.append(record)
    if len(kept) < len(records):
        logger.warning("%s: skipped %d rows without an image", where, len(records) - len(kept))
    return kept
