"""The record: one face image with whatever labels it has (missing ones masked)."""

from __future__ import annotations

from dataclasses import dataclass

from liveaffect.labels import AU_MISSING, EXPR_MISSING, NUM_AUS


@dataclass(frozen=True)
class Record:
    """One face image and its labels.

    Attributes:
        path: local path or ``gs://`` URL of the face image (already cropped).
        expr: expression index 0..7, or -1 when missing.
        va: (valence, arousal) in [-1, 1], or None when missing.
        au: 12 values in AUS order, each 0, 1 or -1 (missing); None = all missing.
        source: name of the dataset the record came from.
        video: recording id used for splits (``_left``/``_right`` already stripped
            by the Aff-Wild2 reader); for still-image sets, the image's own id.
        frame: 1-based frame number inside the video, or -1.
        split: the split the source assigned (``train``, ``validation``, ``test``) or "".
        group: what holdout splits keep together when it is not the recording, e.g. the
            subject of a CSV manifest read with ``group_by="subject"``; "" = ``video``.
    """

    path: str
    expr: int = EXPR_MISSING
    va: tuple[float, float] | None = None
    au: tuple[int, ...] | None = None
    source: str = ""
    video: str = ""
    frame: int = -1
    split: str = ""
    group: str = ""

    def __post_init__(self) -> None:
        if self.au is not None and len(self.au) != NUM_AUS:
            raise ValueError(f"au needs {NUM_AUS} values, got {len(self.au)}")

    @property
    def split_key(self) -> str:
        """What splits keep on one side: ``group`` when set, else ``video``."""
        return self.group or self.video

    @property
    def has_expr(self) -> bool:
        return self.expr != EXPR_MISSING

    @property
    def has_va(self) -> bool:
        return self.va is not None

    @property
    def has_au(self) -> bool:
        return self.au is not None and any(v != AU_MISSING for v in self.au)

    @property
    def complete(self) -> bool:
        """True when all three tasks are labelled (the seed's filter)."""
        return self.has_expr and self.has_va and self.au is not None and AU_MISSING not in self.au
