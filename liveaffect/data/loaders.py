"""One entry point for every dataset kind: detect what a root holds and read it.

Kinds, tried in this order by ``kind="auto"``:

* ``affwild2``: the official per-task layout (task folders up to two levels down);
* ``mtl``: the multi-task single-file release (``training_set_annotations.txt`` ...);
* ``csv``: a ``.csv`` manifest (the file itself, or the one CSV in the folder,
  ``labels.csv``/``manifest.csv`` preferred when there are several);
* ``folders``: class folders, optionally under train/val/test folders.
"""

from __future__ import annotations

import logging
import re

from liveaffect.data import affwild2, affwild2_layout, folders, io
from liveaffect.data.io import DatasetError
from liveaffect.data.records import Record

logger = logging.getLogger(__name__)

KINDS = ("auto", "affwild2", "mtl", "csv", "folders")
_PREFERRED_CSV = ("labels.csv", "manifest.csv", "annotations.csv")
_SPEC = re.compile(r"^(affwild2|mtl|csv|folders):(?!//)(.+)$")


def _find_csv(root: str) -> str | None:
    if not io.isdir(root):
        return root if root.lower().endswith(".csv") else None
    _, files = io.scan(root)
    csvs = [f for f in files if f.lower().endswith(".csv")]
    for name in _PREFERRED_CSV:
        if name in csvs:
            return io.join(root, name)
    if len(csvs) == 1:
        return io.join(root, csvs[0])
    if len(csvs) > 1:
        raise DatasetError(
            f"{root} holds several CSV files ({', '.join(csvs)}); pass the manifest to use"
        )
    return None


def detect_kind(root: str) -> str:
    """The kind of dataset at ``root``: ``affwild2``, ``mtl``, ``csv`` or ``folders``.

    Raises:
        DatasetError: the root does not exist or matches no known kind.
    """
    if not io.exists(root):
        raise DatasetError(f"dataset root {root} does not exist")
    if not io.isdir(root):
        if root.lower().endswith(".csv"):
            return "csv"
        if affwild2_layout.find_mtl_files(root):
            return "mtl"
        raise DatasetError(f"{root} is a file but neither a .csv manifest nor an MTL file")
    if affwild2_layout.find_annotation_root(root) is not None:
        return "affwild2"
    if affwild2_layout.find_mtl_files(root):
        return "mtl"
    if _find_csv(root) is not None:
        return "csv"
    if folders.has_class_folders(root):
        return "folders"
    raise DatasetError(
        f"cannot tell what dataset {root} is: expected Aff-Wild2 task folders, "
        "training/validation_set_annotations.txt, a .csv manifest, or class folders "
        "(angry/, happy/ ... possibly under train/ and test/)"
    )


def load_records(
    root: str, split: str | None = None, kind: str = "auto", group_by: str | None = None
) -> list[Record]:
    """Read one dataset into records.

    Args:
        root: dataset folder, CSV file or MTL annotation file (local or ``gs://``).
        split: ``"train"``, ``"validation"``, ``"test"`` (class folders / CSV only) or None
            for everything the source has.
        kind: one of :data:`KINDS`; ``"auto"`` detects it.
        group_by: CSV manifests only: the column holdout splits keep together
            (``Record.group``, e.g. ``subject``).

    Returns:
        The records, each with its own label masks and ``Record.source`` set.

    Raises:
        DatasetError: missing root, unknown kind, malformed data, or ``group_by`` asked
            of a source that is not a CSV manifest.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if not io.exists(root):
        raise DatasetError(f"dataset root {root} does not exist")
    if kind == "auto":
        kind = detect_kind(root)
    if group_by and kind != "csv":
        raise DatasetError(f"{root}: group_by needs a CSV manifest, but this is {kind!r} data")
    if kind == "affwild2":
        records = affwild2.read_affwild2(root, split)
    elif kind == "mtl":
        records = affwild2.read_mtl(root, split)
    elif kind == "csv":
        path = _find_csv(root)
        if path is None:
            raise DatasetError(f"no .csv manifest in {root}")
        records = folders.read_csv_manifest(path, split, group_by=group_by)
    else:
        records = folders.read_class_folders(root, split)
    logger.info("%s (%s, split=%s): %d records", root, kind, split, len(records))
    if not records:
        logger.warning("%s (%s, split=%s) gave no records", root, kind, split)
    return records


def parse_spec(spec: str) -> tuple[str, str]:
    """``"csv:/data/x"`` -> ``("csv", "/data/x")``; a plain path -> ``("auto", path)``."""
    match = _SPEC.match(spec)
    return (match.group(1), match.group(2)) if match else ("auto", spec)


def load_many(specs: list[str], split: str | None = None) -> list[Record]:
    """Read several sources into one list; each record keeps its own masks and source.

    Args:
        specs: dataset roots, each optionally prefixed with its kind (``folders:/data/fer``).
        split: passed to every source (see :func:`load_records`).

    Raises:
        DatasetError: any source is missing, unrecognised or malformed.
    """
    if not specs:
        raise DatasetError("no dataset given")
    records: list[Record] = []
    for spec in specs:
        kind, root = parse_spec(spec)
        records += load_records(root, split, kind)
    return records
