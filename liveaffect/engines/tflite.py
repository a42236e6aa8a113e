"""CPU engine: the bundle's Keras model compiled to TFLite and run by LiteRT (XNNPACK).

The conversion is cached beside the bundle and rebuilt when ``model.keras`` changes
(:func:`liveaffect.model.export.cached_tflite`). All faces of a frame run in
powers of two (5 faces: 4 + 1), so that only a handful of tensor shapes
are ever allocated (one interpreter per shape, created on first use) and no face's work
is wasted on padding. With test-time views a face takes ``rows_per_face`` rows and a call
holds whole faces: six views of one face run as 6 rows, not padded to 8.
"""

from __future__ import annotations

import os
from collections import OrderedDict

import numpy as np

from liveaffect.bundle import HEAD_WIDTHS, HEADS, Bundle
from liveaffect.engines.base import EngineError, check_crops, concat_heads, to_predictions
from liveaffect.hardware import may_have_gpu
from liveaffect.model.export import MODES
from liveaffect.types import AffectPrediction


def engine_name(mode: str) -> str:
    """Engine name of a TFLite precision: ``fp32`` -> ``tflite``, ``int8`` -> ``tflite-int8``."""
    return "tflite" if mode == "fp32" else f"tflite-{mode}"


ENGINE_MODES = {engine_name(mode): mode for mode in MODES}
"""Engine name -> TFLite precision, from the one list of modes in ``model.export``."""


def _bucket(n: int, cap: int) -> int:
    size = 1
    while size < n:
        size *= 2
    return min(size, cap)


def _pieces(n: int, unit: int, cap: int) -> list[int]:
    """Row counts of the calls that score ``n`` rows (at most ``cap`` each, ``n`` <= ``cap``).

    Each call is a power of two of ``unit``-row groups (a face and its views), largest
    first: 5 faces run as 4 + 1, not padded to 8 (3 faces' work wasted). Only a last,
    partial group is padded.
    """
    groups, most = -(-n // unit), max(1, cap // unit)
    out = []
    while groups:
        size = min(_bucket(groups, most), most)
        if size > groups:
            size //= 2
        out.append(size * unit)
        groups -= size
    return out


class TFLiteEngine:
    """Runs a bundle through LiteRT on the CPU.

    Args:
        bundle: the loaded bundle (its Keras model is converted once, then cached).
        mode: ``fp32``, ``fp16`` or ``int8`` (dynamic-range) weights.
        batch_size: most faces per call (rounded up to a power of two); larger
            batches are split.
        rows_per_face: rows each face takes (its test-time views); padding adds
            whole faces.
        threads: CPU threads for XNNPACK (default: all cores).
        max_interpreters: how many batch shapes stay allocated at once.
    """

    def __init__(
        self,
        bundle: Bundle,
        mode: str = "fp32",
        batch_size: int = 32,
        rows_per_face: int = 1,
        threads: int | None = None,
        max_interpreters: int = 4,
    ) -> None:
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if int(rows_per_face) < 1:
            raise ValueError(f"rows_per_face must be >= 1, got {rows_per_face}")
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:  # pragma: no cover - a dependency in requirements.txt
            raise EngineError(
                "ai-edge-litert is not installed (pip install ai-edge-litert)"
            ) from exc
        from liveaffect.model.export import ExportError, cached_tflite

        self.name = engine_name(mode)
        self.bundle = bundle
        self.batch_size = _bucket(int(batch_size), 1 << 10)
        self.rows_per_face = int(rows_per_face)
        self.max_rows = self.batch_size * self.rows_per_face
        self.threads = int(threads or os.cpu_count() or 1)
        self.input_shape = tuple(bundle.card.preprocess.input_shape)
        try:  # loads the Keras model (and TensorFlow) only to convert it
            self.model_path = cached_tflite(bundle, mode)
        except ExportError as exc:
            raise EngineError(str(exc)) from exc
        self._Interpreter = Interpreter
        try:  # read once: every batch shape's interpreter runs these bytes, even when another
            # process converts a newer model.keras into the same cache file meanwhile
            self._model_bytes = self.model_path.read_bytes()
        except OSError as exc:
            raise EngineError(f"{self.model_path}: cannot read ({exc.strerror or exc})") from None
        self.trained = self._check_model(bundle)
        self._runners: OrderedDict[int, tuple] = OrderedDict()
        self._max = int(max_interpreters)
        self.calls = 0
        self._run(np.zeros((1, *self.input_shape), np.float32))  # warm-up

    def _check_model(self, bundle: Bundle) -> tuple[str, ...]:
        """The converted model's trained heads (its outputs are named by head), after
        checking its input against the card: the bundle's own ``outputs`` would need Keras."""
        try:
            it = self._Interpreter(model_content=self._model_bytes, num_threads=1)
        except (ValueError, RuntimeError) as exc:  # LiteRT: "not a valid Flatbuffer" ...
            raise EngineError(
                f"{self.model_path}: LiteRT cannot read this cached model ({exc}); delete "
                f"{self.model_path.parent} and the next start converts it again"
            ) from None
        shape = tuple(int(d) for d in it.get_input_details()[0]["shape"][1:])
        if shape != self.input_shape:
            raise EngineError(
                f"{self.model_path}: input {shape} does not match the card's {self.input_shape}"
            )
        outputs = it.get_signature_list()["serving_default"]["outputs"]
        return tuple(h for h in HEADS if h in outputs and bundle.card.trained(h))

    def _runner(self, n: int):
        if n in self._runners:
            self._runners.move_to_end(n)
            return self._runners[n]
        it = self._Interpreter(model_content=self._model_bytes, num_threads=self.threads)
        inp = it.get_input_details()[0]
        it.resize_tensor_input(inp["index"], [n, *self.input_shape], strict=False)
        it.allocate_tensors()
        sig = it.get_signature_runner()
        name = it.get_signature_list()["serving_default"]["inputs"][0]
        self._runners[n] = (it, sig, name)
        while len(self._runners) > self._max:
            self._runners.popitem(last=False)
        return self._runners[n]

    def _run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        parts, start = [], 0
        for size in _pieces(len(batch), self.rows_per_face, self.max_rows):
            part = batch[start : start + size]
            start += size
            n = len(part)
            if size != n:
                pad = np.zeros((size - n, *self.input_shape), np.float32)
                part = np.concatenate([part, pad])
            _, sig, name = self._runner(size)
            self.calls += 1
            out = sig(**{name: np.ascontiguousarray(part, np.float32)})
            parts.append({h: np.asarray(out[h], np.float32)[:n] for h in self.trained})
        if len(parts) == 1:
            return parts[0]
        return {h: np.concatenate([p[h] for p in parts]) for h in self.trained}

    def predict_heads(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        """Score ``(N, H, W, C)`` crops; returns trained head -> ``(N, width)`` array."""
        crops = check_crops(crops, self.input_shape)
        parts = [
            self._run(crops[start : start + self.max_rows])
            for start in range(0, len(crops), self.max_rows)
        ]
        return concat_heads(parts, self.trained, HEAD_WIDTHS)

    def predict(self, crops: np.ndarray) -> list[AffectPrediction]:
        """Score ``crops`` of shape (N, H, W, C); returns N predictions."""
        heads = self.predict_heads(crops)
        return to_predictions(heads, len(crops))


def gpu_visible() -> bool:
    """Whether TensorFlow sees a GPU (it then runs Keras there). TensorFlow is asked only
    where a GPU may be present (:func:`liveaffect.hardware.may_have_gpu`)."""
    if not may_have_gpu():
        return False
    try:
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    except Exception:  # pragma: no cover
        return False
