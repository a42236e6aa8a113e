"""Summary numbers per face, computed from the ``faces.csv`` just written.

Reading the CSV back (rather than keeping separate tallies) makes ``summary.json``,
``summary.csv`` and the report agree with the CSV by construction. Per face id: frames
seen, first and last time, the share of frames per expression (top expression of the
smoothed probabilities), mean and spread (population standard deviation) of valence and
arousal, and per AU the share of frames where it is active. Heads the model card marks
untrained have empty CSV cells and no summary numbers.
"""

from __future__ import annotations

import csv
import io as _io
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

HEAD_ORDER = ("expr", "va", "au")
VIDEO_COLUMNS = (
    "video",
    "status",
    "reason",
    "path",
    "duration_s",
    "frames",
    "faces",
    "face_rows",
    "processing_fps",
)
"""The per-video columns of ``summary.csv`` (repeated on each of the video's face rows)."""


@dataclass
class FaceTable:
    """The columns of a ``faces.csv`` as arrays (empty cells of untrained heads are NaN).

    ``expressions`` and ``aus`` are the class and AU names of its header (the model
    card's, as the live app writes them).
    """

    frame: np.ndarray
    timestamp_ms: np.ndarray
    face_id: np.ndarray
    expression: np.ndarray
    probs: np.ndarray  # (rows, 8)
    va: np.ndarray  # (rows, 2)
    au: np.ndarray  # (rows, 12)
    au_active: np.ndarray  # (rows, 12)
    expressions: tuple[str, ...] = ()
    aus: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.frame)

    def select(self, face_id: int) -> FaceTable:
        """The rows of one face id."""
        keep = self.face_id == face_id
        arrays = {k: v[keep] for k, v in vars(self).items() if isinstance(v, np.ndarray)}
        return FaceTable(**arrays, expressions=self.expressions, aus=self.aus)

    @property
    def ids(self) -> list[int]:
        return sorted({int(i) for i in self.face_id})


def _floats(rows: list[dict[str, str]], columns) -> np.ndarray:
    out = np.full((len(rows), len(columns)), np.nan)
    for r, row in enumerate(rows):
        for c, col in enumerate(columns):
            cell = row.get(col, "")
            if cell != "":
                out[r, c] = float(cell)
    return out


def parse_faces_csv(text: str) -> FaceTable:
    """Parse the text of a ``faces.csv`` (the live app's columns)."""
    reader = csv.DictReader(_io.StringIO(text))
    rows = list(reader)
    header = reader.fieldnames or []
    expressions = tuple(c[2:] for c in header if c.startswith("p_"))
    aus = tuple(c for c in header if re.fullmatch(r"AU\d+", c))
    return FaceTable(
        frame=np.array([int(r["frame"]) for r in rows], np.int64),
        timestamp_ms=np.array([float(r["timestamp_ms"]) for r in rows], np.float64),
        face_id=np.array([int(r["face_id"]) for r in rows], np.int64),
        expression=np.array([r["expression"] for r in rows], dtype=object),
        probs=_floats(rows, [f"p_{e}" for e in expressions]),
        va=_floats(rows, ["valence", "arousal"]),
        au=_floats(rows, aus),
        au_active=_floats(rows, [f"{au}_active" for au in aus]),
        expressions=expressions,
        aus=aus,
    )


def read_faces_csv(path: str) -> FaceTable:
    """Read a ``faces.csv`` file."""
    with open(path, encoding="utf-8", newline="") as fh:
        return parse_faces_csv(fh.read())


def _r(value: float) -> float:
    return round(float(value), 4)


def summarize_face(table: FaceTable, face_id: int, heads) -> dict[str, Any]:
    """The summary numbers of one face id (see the module docstring)."""
    face = table.select(face_id)
    n = len(face)
    out: dict[str, Any] = {
        "face_id": int(face_id),
        "frames_seen": n,
        "first_s": _r(face.timestamp_ms.min() / 1000.0),
        "last_s": _r(face.timestamp_ms.max() / 1000.0),
    }
    if "expr" in heads:
        counts = [int(np.sum(face.expression == name)) for name in face.expressions]
        for name, count in zip(face.expressions, counts, strict=True):
            out[f"share_{name}"] = _r(count / n)
        # from the counts, not the rounded shares: shares 1/n apart round alike past
        # 10,000 frames; a tie goes to the first class in the card's order
        out["top_expression"] = face.expressions[int(np.argmax(counts))]
    if "va" in heads:
        for k, name in enumerate(("valence", "arousal")):
            out[f"{name}_mean"] = _r(np.mean(face.va[:, k]))
            out[f"{name}_std"] = _r(np.std(face.va[:, k]))
    if "au" in heads:
        for k, au in enumerate(face.aus):
            out[f"{au}_rate"] = _r(np.mean(face.au_active[:, k]))
    return out


def summarize_faces(table: FaceTable, heads) -> list[dict[str, Any]]:
    """One summary per face id, ids in increasing order."""
    return [summarize_face(table, i, heads) for i in table.ids]


def summary_csv(videos: list[dict[str, Any]]) -> str:
    """The text of ``summary.csv``: one row per video and face id.

    Args:
        videos: per video the ``summary.json`` content, or for a video that failed at
            least ``video``, ``status``, ``reason`` and ``path``.

    The face columns are those of the videos' face summaries (the shown heads only). A
    video without faces (or that failed) has one row with empty face cells.
    """
    columns = [*VIDEO_COLUMNS, "face_id"]
    for video in videos:
        for face in video.get("face_summaries") or []:
            columns += [k for k in face if k not in columns]
    buffer = _io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", restval="")
    writer.writeheader()
    for video in videos:
        base = {k: video.get(k, "") for k in VIDEO_COLUMNS}
        base["path"] = video.get("source", {}).get("path", video.get("path", ""))
        faces = video.get("face_summaries") or [{}]
        for face in faces:
            writer.writerow({**base, **face})
    return buffer.getvalue()
