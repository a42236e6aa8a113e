"""CPU engine: the bundle's Keras model compiled to TFLite and run by LiteRT (XNNPACK).

The conversion is cached beside the bundle and rebuilt when ``model.keras`` changes
(:func:`liveaffect.model.export.cached_tflite`). All faces of a frame run in one
call; batches are padded to a power of two so that only a handful of tensor shapes
are ever allocated (one interpreter per shape, created on first use). With test-time
views the unit is a face's views (``unit``, set by the TTA wrapper): six views of one
face run as 6 rows, not padded to 8.
"""

from __future__ import annotations

import os
from collections import OrderedDict

import numpy as np

from liveaffect.bundle import HEADS, Bundle
from liveaffect.runtime.engine import EngineError, register_engine, split_outputs
from liveaffect.types import AffectPrediction

MODES = {"tflite": "fp32", "tflite-fp16": "fp16", "tflite-int8": "int8"}


def _bucket(n: int, cap: int) -> int:
    size = 1
    while size < n:
        size *= 2
    return min(size, cap)


def _padded(n: int, unit: int, cap: int) -> int:
    """Rows to allocate for ``n``: a power of two of ``unit``-row groups (at most ``cap`` rows)."""
    groups = -(-n // unit)
    return unit * _bucket(groups, max(1, cap // unit))


class TFLiteEngine:
    """Runs a bundle through LiteRT on the CPU.

    Args:
        bundle: the loaded bundle (its Keras model is converted once, then cached).
        mode: ``fp32``, ``fp16`` or ``int8`` (dynamic-range) weights.
        batch_size: most faces per call; larger frames are split.
        threads: CPU threads for XNNPACK (default: all cores).
        max_interpreters: how many batch shapes stay allocated at once.
    """

    def __init__(
        self,
        bundle: Bundle,
        mode: str = "fp32",
        batch_size: int = 32,
        threads: int | None = None,
        max_interpreters: int = 4,
    ) -> None:
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:  # pragma: no cover - a dependency in requirements.txt
            raise EngineError(
                "ai-edge-litert is not installed (pip install ai-edge-litert)"
            ) from exc
        from liveaffect.model.export import ExportError, cached_tflite

        self.name = "tflite" if mode == "fp32" else f"tflite-{mode}"
        self.bundle = bundle
        self.batch_size = _bucket(int(batch_size), 1 << 10)
        self.threads = int(threads or os.cpu_count() or 1)
        self.input_shape = tuple(bundle.card.preprocess.input_shape)
        self.trained = tuple(h for h in HEADS if h in bundle.outputs and bundle.card.trained(h))
        try:
            self.model_path = cached_tflite(bundle, mode)
        except ExportError as exc:
            raise EngineError(str(exc)) from exc
        self._Interpreter = Interpreter
        self._runners: OrderedDict[int, tuple] = OrderedDict()
        self._max = int(max_interpreters)
        self.calls = 0
        self.unit = 1  # rows that belong together: TTAEngine sets its number of views
        self._order = sorted(bundle.outputs, key=bundle.outputs.get)
        self._heads = {h: i for i, h in enumerate(self._order)}
        self._run(np.zeros((1, *self.input_shape), np.float32))  # warm-up

    def _runner(self, n: int):
        if n in self._runners:
            self._runners.move_to_end(n)
            return self._runners[n]
        it = self._Interpreter(model_path=str(self.model_path), num_threads=self.threads)
        inp = it.get_input_details()[0]
        it.resize_tensor_input(inp["index"], [n, *self.input_shape], strict=False)
        it.allocate_tensors()
        sig = it.get_signature_runner()
        name = it.get_signature_list()["serving_default"]["inputs"][0]
        self._runners[n] = (it, sig, name)
        while len(self._runners) > self._max:
            self._runners.popitem(last=False)
        return self._runners[n]

    def _run(self, batch: np.ndarray) -> list[np.ndarray]:
        n = len(batch)
        size = _padded(n, self.unit, self.batch_size)
        if size != n:
            pad = np.zeros((size - n, *self.input_shape), np.float32)
            batch = np.concatenate([batch, pad])
        _, sig, name = self._runner(size)
        self.calls += 1
        out = sig(**{name: np.ascontiguousarray(batch, np.float32)})
        return [np.asarray(out[h])[:n] for h in self._order]

    def predict(self, crops: np.ndarray) -> list[AffectPrediction]:
        """Score ``crops`` of shape (N, H, W, C); returns N predictions."""
        crops = np.asarray(crops, np.float32)
        if crops.ndim != 4 or crops.shape[1:] != self.input_shape:
            raise ValueError(f"crops must have shape (N, {self.input_shape}), got {crops.shape}")
        results: list[AffectPrediction] = []
        step = max(self.unit, self.batch_size // self.unit * self.unit)
        for start in range(0, len(crops), step):
            outputs = self._run(crops[start : start + step])
            results.extend(split_outputs(outputs, self._heads, self.trained))
        return results


def _factory(mode: str):
    def build(bundle: Bundle, batch_size: int = 32, **kw) -> TFLiteEngine:
        if bundle.model is None:
            raise EngineError("the bundle holds no Keras model to convert")
        return TFLiteEngine(bundle, mode=mode, batch_size=batch_size, **kw)

    return build


for _name, _mode in MODES.items():
    register_engine(_name, _factory(_mode))


def _gpu_visible() -> bool:
    try:
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    except Exception:  # pragma: no cover
        return False


def auto_order() -> list[str]:
    """Keras when a GPU is visible (TensorFlow uses it); TFLite/XNNPACK on CPU."""
    return ["keras", "tflite"] if _gpu_visible() else ["tflite", "keras"]
