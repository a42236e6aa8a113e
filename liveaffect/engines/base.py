"""What every engine shares: the error type, the engine protocol, and output splitting."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from liveaffect.bundle import HEADS, Bundle
from liveaffect.types import AffectPrediction

_FIELD = {"expr": "expr_probs", "va": "va", "au": "au_probs"}


class EngineError(Exception):
    """An engine cannot be built for this bundle (unknown name, missing runtime ...)."""


@runtime_checkable
class Engine(Protocol):
    """Runs the multi-task model on batches of prepared face crops.

    Attributes:
        name: the registry name (``keras``, ``tflite-int8``, ``keras+tta6`` ...).
        input_shape: ``(H, W, C)`` of one crop.
        trained: heads whose outputs may be shown (the card's trained heads).
    """

    name: str
    input_shape: tuple[int, ...]
    trained: tuple[str, ...]

    def predict_heads(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        """Score ``(N, H, W, C)`` crops; returns trained head -> ``(N, width)`` array."""
        ...

    def predict(self, crops: np.ndarray) -> list[AffectPrediction]:
        """Score ``(N, H, W, C)`` crops; returns N predictions (untrained heads None)."""
        ...


def trained_heads(bundle: Bundle) -> tuple[str, ...]:
    """Heads the bundle's model has and its card marks as trained, in ``HEADS`` order."""
    return tuple(h for h in HEADS if h in bundle.outputs and bundle.card.trained(h))


def check_crops(crops: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    """``crops`` as float32 ``(N, *input_shape)``; ValueError naming the shape otherwise."""
    crops = np.asarray(crops, np.float32)
    if crops.ndim != 4 or crops.shape[1:] != tuple(input_shape):
        raise ValueError(f"crops must have shape (N, {tuple(input_shape)}), got {crops.shape}")
    return crops


def to_predictions(heads: dict[str, np.ndarray], n: int) -> list[AffectPrediction]:
    """One :class:`AffectPrediction` per row of the per-head arrays (missing heads None)."""
    used = {h: np.asarray(v, np.float32) for h, v in heads.items()}
    return [AffectPrediction(**{_FIELD[h]: used[h][k].copy() for h in used}) for k in range(n)]


def concat_heads(parts: Sequence[dict[str, np.ndarray]], heads: Sequence[str], widths) -> dict:
    """Concatenate per-call head arrays; an empty list gives ``(0, width)`` arrays."""
    if not parts:
        return {h: np.zeros((0, widths[h]), np.float32) for h in heads}
    return {h: np.concatenate([p[h] for p in parts]) for h in heads}
