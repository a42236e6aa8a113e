"""The one way to run a model: Keras, TFLite, and test-time views around either.

Every caller that scores faces -- the live loop, ``evaluate``, training validation and
``bench`` -- builds its engine here with :func:`create_engine`. An engine scores every
face of a batch in one call: ``predict_heads(crops)`` returns trained head ->
``(N, width)`` array, ``predict(crops)`` one :class:`~liveaffect.types.AffectPrediction`
per face. Heads that the card marks as untrained are left out (``None``) so that nobody
shows numbers from random weights. ``"auto"`` picks TFLite (XNNPACK) on a CPU and Keras
when a GPU is visible. TensorFlow is imported only where it is needed: a Keras engine, a
TFLite conversion that is not cached yet, or asking whether a GPU is visible on a machine
that may have one (:func:`liveaffect.hardware.may_have_gpu`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

from liveaffect.bundle import Bundle
from liveaffect.engines.base import Engine, EngineError
from liveaffect.engines.keras import KerasEngine
from liveaffect.engines.tflite import ENGINE_MODES, TFLiteEngine, gpu_visible
from liveaffect.engines.views import TTAEngine
from liveaffect.errors import OptionError
from liveaffect.tta import TTA, card_tta

__all__ = [
    "ENGINES",
    "Engine",
    "EngineError",
    "EngineOptions",
    "KerasEngine",
    "TFLiteEngine",
    "TTAEngine",
    "build_engine",
    "configure_threads",
    "converts_first",
    "create_engine",
    "engine_names",
    "register_engine",
]

EngineFactory = Callable[..., Engine]

ENGINES: dict[str, EngineFactory] = {}
"""Engine name -> factory ``(bundle, batch_size=..., rows_per_face=..., threads=...)``."""


def register_engine(name: str, factory: EngineFactory) -> None:
    """Make ``factory`` available as ``create_engine(bundle, name)``."""
    ENGINES[name] = factory


def engine_names() -> list[str]:
    """Names accepted by :func:`create_engine` (``"auto"`` first)."""
    return ["auto", *ENGINES]


def auto_order() -> list[str]:
    """Keras when a GPU is visible (TensorFlow uses it); TFLite/XNNPACK on CPU."""
    return ["keras", "tflite"] if gpu_visible() else ["tflite", "keras"]


@dataclass(frozen=True)
class EngineOptions:
    """Which engine to build and how, checked once at construction.

    Attributes:
        name: ``"auto"`` or a key of :data:`ENGINES` (case and spaces ignored).
        batch_size: most faces run through the model in one call.
        tta: test-time views to average (:class:`~liveaffect.tta.TTA`); None: the ones
            the card names (those its reported numbers used); False: each face once.
        threads: CPU threads for a TFLite engine (None: all cores); Keras uses TensorFlow's
            global setting (:func:`configure_threads`).

    Raises:
        OptionError: a bad value, naming the field.
    """

    name: str = "auto"
    batch_size: int = 32
    tta: TTA | bool | None = None
    threads: int | None = None

    def __post_init__(self) -> None:
        name = str(self.name).strip().lower()
        object.__setattr__(self, "name", name)
        if name not in engine_names():
            choices = ", ".join(engine_names())
            raise OptionError("name", f"{{}}: unknown engine {name!r}; choose one of: {choices}")
        if int(self.batch_size) < 1:
            raise OptionError("batch_size", f"{{}} must be 1 or more, got {self.batch_size}")
        if self.threads is not None and self.threads < 1:
            raise OptionError("threads", f"{{}} must be 1 or more, got {self.threads}")

    def views(self, bundle: Bundle) -> TTA:
        """The test-time views for ``bundle``: the card's when ``tta`` is None or True."""
        if self.tta is None or self.tta is True:
            return card_tta(bundle.card)
        return self.tta or TTA()


def create_engine(
    bundle: Bundle,
    name: str = "auto",
    batch_size: int = 32,
    tta: TTA | bool | None = None,
    threads: int | None = None,
) -> Engine:
    """Build the engine called ``name`` for ``bundle`` (the arguments of :class:`EngineOptions`).

    Raises:
        OptionError: unknown name, or a bad batch size or thread count.
        EngineError: no engine could be built.
    """
    return build_engine(bundle, EngineOptions(name, batch_size, tta, threads))


def converts_first(bundle: Bundle, options: EngineOptions) -> str | None:
    """The TFLite precision (``fp32``, ``int8`` ...) that building ``options``' engine for
    ``bundle`` converts first, its cache being missing or stale; None when nothing is
    converted (a warm cache, or a Keras engine). For a line that explains the wait."""
    from liveaffect.model.export import fresh_tflite

    name = auto_order()[0] if options.name == "auto" else options.name
    mode = ENGINE_MODES.get(name)
    if mode is None:
        return None
    return None if fresh_tflite(bundle, mode) is not None else mode


def build_engine(bundle: Bundle, options: EngineOptions) -> Engine:
    """Build the engine ``options`` describe for ``bundle``, wrapped in its test-time views.

    Raises:
        EngineError: no engine could be built.
    """
    views = options.views(bundle)
    kw = dict(
        batch_size=options.batch_size,
        rows_per_face=views.n_views if views.active else 1,
        threads=options.threads,
    )
    engine = _create_plain(bundle, options.name, kw)
    return TTAEngine(engine, views) if views.active else engine


_FALLBACKS_TOLD: set[str] = set()


def _create_plain(bundle: Bundle, name: str, kw: dict) -> Engine:
    if name == "auto":
        reasons = []
        for candidate in auto_order():
            try:
                engine = ENGINES[candidate](bundle, **kw)
            except EngineError as exc:
                reasons.append(f"{candidate}: {exc}")
                continue
            for reason in reasons:  # say why, once: e.g. a cached .tflite LiteRT cannot read
                if reason not in _FALLBACKS_TOLD:
                    _FALLBACKS_TOLD.add(reason)
                    print(f"warning: engine {reason}; using {candidate}", file=sys.stderr)
            return engine
        raise EngineError("no engine could be built (" + "; ".join(reasons) + ")")
    return ENGINES[name](bundle, **kw)


def configure_threads(threads: int | None) -> None:
    """Limit TensorFlow and OpenCV to ``threads`` CPU threads (None: library defaults).

    Must run before TensorFlow executes its first operation. TensorFlow is not imported
    here: if it is not loaded yet, the limit goes into the environment variables it reads
    when it starts (``TF_NUM_INTRAOP_THREADS``, ``TF_NUM_INTEROP_THREADS``), if it ever does.
    """
    if not threads:
        return
    import cv2

    cv2.setNumThreads(int(threads))
    if "tensorflow" not in sys.modules:
        os.environ["TF_NUM_INTRAOP_THREADS"] = str(int(threads))
        os.environ["TF_NUM_INTEROP_THREADS"] = str(min(int(threads), 2))
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(min(int(threads), 2))
    except RuntimeError:  # TensorFlow already initialised: keep its settings
        pass


def _keras_factory(
    bundle: Bundle, batch_size: int = 32, rows_per_face: int = 1, threads: int | None = None
) -> Engine:
    if bundle.model is None:
        raise EngineError("the bundle holds no Keras model")
    return KerasEngine(bundle, batch_size=batch_size, rows_per_face=rows_per_face)


def _tflite_factory(mode: str) -> EngineFactory:
    def build(
        bundle: Bundle, batch_size: int = 32, rows_per_face: int = 1, threads: int | None = None
    ) -> Engine:
        return TFLiteEngine(
            bundle, mode=mode, batch_size=batch_size, rows_per_face=rows_per_face, threads=threads
        )

    return build


register_engine("keras", _keras_factory)
for _name, _mode in ENGINE_MODES.items():
    register_engine(_name, _tflite_factory(_mode))
