"""Test-time augmentation: score each face as several views and average the outputs.

A :class:`TTA` says which views: the face as given, mirrored (``flip``) and zoomed about
its centre by each of ``scales`` (1.0 = as given, 0.9 = the face 10% smaller with a
reflected border, 1.1 = 10% larger and cut). The views are ``len(scales) * (2 if flip)``.
The same object drives ``evaluate`` and the app's engine, so the numbers a model card
reports are the numbers the app shows. The card stores it as ``{"flip": ..., "scales": ...}``.

OpenCV's ``warpAffine`` does the zoom (float32 in, float32 out, any normalisation);
nothing here is specific to one model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class TTA:
    """Which views of each face to average.

    Args:
        flip: add the horizontal mirror of every scaled view.
        scales: zoom factors about the face centre (each in [0.5, 2]); 1.0 is the face as given.
    """

    flip: bool = False
    scales: tuple[float, ...] = field(default=(1.0,))

    def __post_init__(self) -> None:
        scales = tuple(float(s) for s in self.scales)
        if not scales:
            raise ValueError("TTA scales must not be empty")
        if not all(0.5 <= s <= 2.0 for s in scales):
            raise ValueError(f"TTA scales must lie in [0.5, 2], got {list(scales)}")
        if len(set(scales)) != len(scales):
            raise ValueError(f"TTA scales must differ, got {list(scales)}")
        object.__setattr__(self, "scales", scales)
        object.__setattr__(self, "flip", bool(self.flip))

    @property
    def n_views(self) -> int:
        return len(self.scales) * (2 if self.flip else 1)

    @property
    def active(self) -> bool:
        """More than the face as given."""
        return self.n_views > 1 or self.scales != (1.0,)

    def views(self, batch: np.ndarray) -> np.ndarray:
        """All views of a ``(N, H, W, C)`` batch, view-major: ``(n_views * N, H, W, C)``
        (the batch itself when the only view is the face as given)."""
        batch = np.asarray(batch, np.float32)
        if batch.ndim != 4:
            raise ValueError(f"TTA needs a (N, H, W, C) batch, got shape {batch.shape}")
        if not self.active:
            return batch
        scaled = [batch if s == 1.0 else zoom(batch, s) for s in self.scales]
        if self.flip:
            scaled += [v[:, :, ::-1, :] for v in scaled]
        return np.ascontiguousarray(np.concatenate(scaled))

    def merge(self, values: np.ndarray, n: int) -> np.ndarray:
        """Average view-major outputs ``(n_views * n, ...)`` back to ``(n, ...)``."""
        values = np.asarray(values)
        if len(values) != self.n_views * n:
            raise ValueError(
                f"expected {self.n_views * n} rows ({self.n_views} views), got {len(values)}"
            )
        if self.n_views == 1:
            return values
        return values.reshape(self.n_views, n, *values.shape[1:]).mean(axis=0)

    def describe(self) -> str:
        """Short text for reports and logs, e.g. ``flip x scales 1.0/0.9 (4 views)``."""
        if not self.active:
            return "none (1 view)"
        parts = (["flip"] if self.flip else []) + [
            "scales " + "/".join(f"{s:g}" for s in self.scales)
        ]
        return f"{' x '.join(parts)} ({self.n_views} views)"

    def to_dict(self) -> dict[str, Any]:
        return {"flip": self.flip, "scales": list(self.scales)}

    def card_entry(self) -> dict[str, Any]:
        """What a model card stores: the views, or nothing when each face is scored once."""
        return self.to_dict() if self.active else {}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TTA:
        return cls(flip=bool(data.get("flip", False)), scales=tuple(data.get("scales", (1.0,))))


def parse_scales(text: str) -> tuple[float, ...]:
    """``"1,0.9"`` -> ``(1.0, 0.9)`` (for command-line options)."""
    try:
        return tuple(float(part) for part in text.replace(" ", "").split(",") if part)
    except ValueError as exc:
        raise ValueError(f"TTA scales must be comma-separated numbers, got {text!r}") from exc


def zoom(batch: np.ndarray, scale: float) -> np.ndarray:
    """Zoom every image of ``(N, H, W, C)`` about its centre, reflecting at the border."""
    import cv2

    n, h, w, c = batch.shape
    matrix = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), 0.0, float(scale))
    out = np.empty_like(batch, dtype=np.float32)
    for i in range(n):
        warped = cv2.warpAffine(
            batch[i].astype(np.float32, copy=False),
            matrix,
            (w, h),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT,
        )
        out[i] = warped.reshape(h, w, c)
    return out


def training_tta_flip(training: Mapping[str, Any]) -> bool:
    """The ``tta_flip`` recorded in an older card's training section (top level or one deeper)."""
    flip = training.get("tta_flip")
    if flip is None:
        nested = [v for v in training.values() if isinstance(v, Mapping) and "tta_flip" in v]
        flip = nested[0]["tta_flip"] if nested else False
    return bool(flip)


def card_tta(card: Any) -> TTA:
    """The TTA a model card asks for: its ``tta`` entry, else the older ``training.tta_flip``."""
    if getattr(card, "tta", None):
        return TTA.from_dict(card.tta)
    return TTA(flip=training_tta_flip(getattr(card, "training", {}) or {}))
