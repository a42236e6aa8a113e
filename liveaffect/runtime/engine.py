"""Affect engines: score a batch of prepared face crops with the multi-task model.

An engine implements :class:`liveaffect.types.AffectEngine`: ``predict(crops)`` takes
every face of a frame as ONE ``(N, H, W, C)`` float32 batch and returns one
:class:`~liveaffect.types.AffectPrediction` per face. Heads that the bundle's card
marks as untrained come out as ``None`` so that nobody shows numbers from random
weights.

Engines are created by name through :func:`create_engine`; a backend registers a
factory in :data:`ENGINES` (``register_engine``); ``"auto"`` tries TFLite then Keras on a
CPU and Keras first when a GPU is visible (``tflite_engine.auto_order``).
TensorFlow is imported only when an engine is built.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from liveaffect.bundle import HEADS, Bundle
from liveaffect.tta import TTA, card_tta
from liveaffect.types import AffectEngine, AffectPrediction

EngineFactory = Callable[..., AffectEngine]

ENGINES: dict[str, EngineFactory] = {}
"""Engine name -> factory ``(bundle, batch_size=...) -> AffectEngine``."""

_FIELD = {"expr": "expr_probs", "va": "va", "au": "au_probs"}


class EngineError(Exception):
    """An engine cannot be built for this bundle (unknown name, missing runtime ...)."""


def register_engine(name: str, factory: EngineFactory) -> None:
    """Make ``factory`` available as ``create_engine(bundle, name)``."""
    ENGINES[name] = factory


def _register_builtin() -> None:
    """Register the TFLite engines (deferred: that module imports this one)."""
    from liveaffect.runtime import tflite_engine  # noqa: F401  (registers on import)


def engine_names() -> list[str]:
    """Names accepted by :func:`create_engine` (``"auto"`` first)."""
    _register_builtin()
    return ["auto", *ENGINES]


def create_engine(
    bundle: Bundle, name: str = "auto", batch_size: int = 32, tta: TTA | bool | None = None
) -> AffectEngine:
    """Build the engine called ``name`` for ``bundle``.

    Args:
        bundle: the loaded model bundle.
        name: ``"auto"`` or a key of :data:`ENGINES`.
        batch_size: most faces run through the model in one call.
        tta: test-time views to average (:class:`~liveaffect.tta.TTA`); None: the ones
            the card names (those its reported numbers used); False: each face once.

    Raises:
        EngineError: unknown name, or no engine could be built.
    """
    views = card_tta(bundle.card) if tta is None or tta is True else (tta or TTA())
    engine = _create_plain(bundle, name, batch_size)
    return TTAEngine(engine, views) if views.active else engine


def _create_plain(bundle: Bundle, name: str, batch_size: int) -> AffectEngine:
    _register_builtin()
    if name == "auto":
        from liveaffect.runtime.tflite_engine import auto_order

        reasons = []
        for candidate in auto_order():
            try:
                return ENGINES[candidate](bundle, batch_size=batch_size)
            except EngineError as exc:
                reasons.append(f"{candidate}: {exc}")
        raise EngineError("no engine could be built (" + "; ".join(reasons) + ")")
    if name not in ENGINES:
        raise EngineError(f"unknown engine {name!r}; choose from {', '.join(engine_names())}")
    return ENGINES[name](bundle, batch_size=batch_size)


def configure_threads(threads: int | None) -> None:
    """Limit TensorFlow and OpenCV to ``threads`` CPU threads (None: library defaults).

    Must run before TensorFlow executes its first operation.
    """
    if not threads:
        return
    import cv2
    import tensorflow as tf

    cv2.setNumThreads(int(threads))
    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(min(int(threads), 2))
    except RuntimeError:  # TensorFlow already initialised: keep its settings
        pass


def split_outputs(
    outputs: Sequence[np.ndarray], heads: dict[str, int], trained: Sequence[str]
) -> list[AffectPrediction]:
    """Turn the model's per-head batch outputs into one prediction per face.

    Args:
        outputs: model outputs in the model's output order, each ``(N, width)``.
        heads: head name -> output index (``Bundle.outputs``).
        trained: heads whose values may be shown; the others become ``None``.
    """
    used = {h: np.asarray(outputs[i], np.float32) for h, i in heads.items() if h in trained}
    n = next((len(v) for v in used.values()), len(outputs[0]) if len(outputs) else 0)
    return [AffectPrediction(**{_FIELD[h]: used[h][k].copy() for h in used}) for k in range(n)]


class KerasEngine:
    """Runs a Keras bundle with a compiled ``tf.function`` (no per-face ``model.predict``).

    Args:
        bundle: the loaded bundle; its card says which heads are trained.
        batch_size: most faces per model call (a frame rarely has more).
        warmup: trace the function once now, so the first frame is not slow.
    """

    name = "keras"

    def __init__(self, bundle: Bundle, batch_size: int = 32, warmup: bool = True) -> None:
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        import tensorflow as tf

        self.bundle = bundle
        self.batch_size = int(batch_size)
        self.input_shape = tuple(bundle.card.preprocess.input_shape)
        self.trained = tuple(h for h in HEADS if h in bundle.outputs and bundle.card.trained(h))
        self.calls = 0
        model = bundle.model
        spec = tf.TensorSpec((None, *self.input_shape), tf.float32)
        self._fn = tf.function(lambda x: model(x, training=False), input_signature=[spec])
        self._output_names = list(getattr(model, "output_names", []) or [])
        if warmup:
            self._run(np.zeros((1, *self.input_shape), np.float32))

    def _run(self, batch: np.ndarray) -> list[np.ndarray]:
        self.calls += 1
        out: Any = self._fn(batch)
        if isinstance(out, dict):
            out = [out[name] for name in self._output_names]
        elif not isinstance(out, (list, tuple)):
            out = [out]
        return [np.asarray(o) for o in out]

    def predict(self, crops: np.ndarray) -> list[AffectPrediction]:
        """Score ``crops`` of shape (N, H, W, C); returns N predictions (``[]`` for N = 0)."""
        crops = np.asarray(crops, np.float32)
        if crops.shape[1:] != self.input_shape:
            raise ValueError(f"crops must have shape (N, {self.input_shape}), got {crops.shape}")
        if len(crops) == 0:
            return []
        results: list[AffectPrediction] = []
        for start in range(0, len(crops), self.batch_size):
            outputs = self._run(crops[start : start + self.batch_size])
            results.extend(split_outputs(outputs, self.bundle.outputs, self.trained))
        return results


class TTAEngine:
    """Wraps an engine: scores every test-time view of each face in one call, averages them.

    Args:
        inner: the engine that runs the model.
        tta: the views (flip, zooms), the same :class:`~liveaffect.tta.TTA` that
            ``evaluate`` uses for the numbers in the model card.
    """

    def __init__(self, inner: AffectEngine, tta: TTA) -> None:
        self.inner = inner
        self.tta = tta
        # the inner engine sees n_views rows per face: keep its faces per call, and let a
        # padding engine (TFLite) pad whole faces, not rows (6 views stay 6 rows, not 8)
        if hasattr(inner, "batch_size"):
            inner.batch_size = int(inner.batch_size) * tta.n_views
        if hasattr(inner, "unit"):
            inner.unit = tta.n_views
        self.name = f"{getattr(inner, 'name', 'engine')}+tta{tta.n_views}"

    def __getattr__(self, attr: str) -> Any:  # batch_size, input_shape, calls ...
        return getattr(self.inner, attr)

    def predict(self, crops: np.ndarray) -> list[AffectPrediction]:
        """Score ``crops`` (N, H, W, C) as ``n_views * N`` faces; returns N averaged predictions."""
        crops = np.asarray(crops, np.float32)
        if len(crops) == 0:
            return []
        n = len(crops)
        views = self.inner.predict(self.tta.views(crops))

        def mean(field: str, k: int) -> np.ndarray | None:
            values = [getattr(p, field) for p in views[k::n]]
            return None if values[0] is None else np.mean(values, axis=0, dtype=np.float32)

        return [
            AffectPrediction(
                expr_probs=mean("expr_probs", k), va=mean("va", k), au_probs=mean("au_probs", k)
            )
            for k in range(n)
        ]


def _keras_factory(bundle: Bundle, batch_size: int = 32) -> AffectEngine:
    if bundle.model is None:
        raise EngineError("the bundle holds no Keras model")
    return KerasEngine(bundle, batch_size=batch_size)


register_engine("keras", _keras_factory)
