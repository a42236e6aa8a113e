"""The Keras engine: the bundle's model as one compiled ``tf.function`` (any batch size)."""

from __future__ import annotations

from typing import Any

import numpy as np

from liveaffect.bundle import HEAD_WIDTHS, Bundle
from liveaffect.engines.base import check_crops, concat_heads, to_predictions, trained_heads
from liveaffect.types import AffectPrediction


class KerasEngine:
    """Runs a Keras bundle with a compiled ``tf.function`` (no per-face ``model.predict``).

    Args:
        bundle: the loaded bundle; its card says which heads are trained.
        batch_size: most faces per model call (a frame rarely has more).
        rows_per_face: rows each face takes in a batch (its test-time views); a call
            holds at most ``batch_size * rows_per_face`` rows.
        warmup: trace the function once now, so the first frame is not slow.
    """

    name = "keras"

    def __init__(
        self, bundle: Bundle, batch_size: int = 32, rows_per_face: int = 1, warmup: bool = True
    ) -> None:
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if int(rows_per_face) < 1:
            raise ValueError(f"rows_per_face must be >= 1, got {rows_per_face}")
        import tensorflow as tf

        self.bundle = bundle
        self.batch_size = int(batch_size)
        self.rows_per_face = int(rows_per_face)
        self.input_shape = tuple(bundle.card.preprocess.input_shape)
        self.trained = trained_heads(bundle)
        self.calls = 0
        model = bundle.model
        spec = tf.TensorSpec((None, *self.input_shape), tf.float32)
        self._fn = tf.function(lambda x: model(x, training=False), input_signature=[spec])
        self._output_names = [str(n) for n in getattr(model, "output_names", None) or []]
        if warmup:
            self._run(np.zeros((1, *self.input_shape), np.float32))

    def _run(self, batch: np.ndarray) -> list[np.ndarray]:
        self.calls += 1
        out: Any = self._fn(batch)
        if isinstance(out, dict):  # dict outputs: model.outputs follows output_names
            names = self._output_names
            keys = names if all(n in out for n in names) else sorted(out)
            out = [out[k] for k in keys]
        elif not isinstance(out, list | tuple):
            out = [out]
        return [np.asarray(o, np.float32) for o in out]

    def predict_heads(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        """Score ``(N, H, W, C)`` crops; returns trained head -> ``(N, width)`` array."""
        crops = check_crops(crops, self.input_shape)
        step = self.batch_size * self.rows_per_face
        parts = []
        for start in range(0, len(crops), step):
            outputs = self._run(crops[start : start + step])
            parts.append({h: outputs[self.bundle.outputs[h]] for h in self.trained})
        return concat_heads(parts, self.trained, HEAD_WIDTHS)

    def predict(self, crops: np.ndarray) -> list[AffectPrediction]:
        """Score ``crops`` of shape (N, H, W, C); returns N predictions (``[]`` for N = 0)."""
        heads = self.predict_heads(crops)
        return to_predictions(heads, len(crops))
