"""Run a model bundle over labelled records: read, (detect,) prepare, batch, predict.

Each image goes through :func:`liveaffect.preprocess.prepare_face`, the one
preprocessing function shared with training and the live app, and the model runs
through one of the app's engines (:mod:`liveaffect.engines`): Keras by default, or the
engine the app runs (e.g. ``tflite-int8``), so that its numbers can be measured too. With
a face detector the full image is searched first and the highest-scoring face is cropped
with the card's margin; images without a face are *misses*, always counted and reported
with the detection rate, and by default (``no_face="error"``) counted as wrong in every
metric, so that a detector that misses hard faces cannot flatter the numbers; ``"whole"``
scores the whole image instead and ``"skip"`` leaves them out. Unreadable images are
counted, warned about and skipped.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from liveaffect.bundle import HEAD_WIDTHS, HEADS, Bundle
from liveaffect.data import io
from liveaffect.data.records import Record
from liveaffect.engines import create_engine
from liveaffect.evaluation.metrics import NO_PREDICTION
from liveaffect.evaluation.result import EvaluationResult, evaluate_arrays
from liveaffect.labels import AUS, EXPRESSIONS
from liveaffect.preprocess import PreprocessSpec, crop_face, decode_image, prepare_face
from liveaffect.tta import TTA
from liveaffect.types import FaceDetector

log = logging.getLogger(__name__)

_MAX_WARNINGS = 10
NO_FACE_MODES = ("error", "whole", "skip")


@dataclass
class Predictions:
    """Model outputs for the records that could be scored, in order.

    Attributes:
        records: the scored records (unreadable images and detector misses removed).
        expr_probs: (N, 8) probabilities, or None when the head is not trained.
        va: (N, 2) valence/arousal, or None when the head is not trained.
        au_probs: (N, 12) probabilities, or None when the head is not trained.
        n_total: records given, before anything was skipped.
        unreadable: paths of images that could not be read or decoded.
        misses: paths of images in which the detector found no face (``detect`` only).
        detect: whether a face detector ran on the full images.
        no_face: what was done with the misses: ``error``, ``whole`` or ``skip``.
        missed_records: with ``no_face="error"``, the records without a face (scored as
            errors by :meth:`evaluate`).
        tta_flip: whether the views include each image's mirror.
        tta: the test-time views averaged (:meth:`liveaffect.tta.TTA.describe`).
        degrade: the degraded copy scored (:data:`liveaffect.data.degrade.KINDS`), or "".
        engine: the engine that scored the faces (``keras``, ``tflite``, ``tflite-int8`` ...).
    """

    records: list[Record]
    expr_probs: np.ndarray | None = None
    va: np.ndarray | None = None
    au_probs: np.ndarray | None = None
    n_total: int = 0
    unreadable: list[str] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)
    detect: bool = False
    no_face: str = "skip"
    missed_records: list[Record] = field(default_factory=list)
    tta_flip: bool = False
    tta: str = "none (1 view)"
    degrade: str = ""
    engine: str = "keras"

    def labels(self) -> dict[str, np.ndarray]:
        """The scored records' labels with Aff-Wild2's missing values (-1, -5, -1)."""
        return label_arrays(self.records)

    def evaluate(
        self,
        au_thresholds: float | Sequence[float] | None = None,
        class_names: Sequence[str] = EXPRESSIONS,
    ) -> EvaluationResult:
        """Score these predictions against the records' labels.

        A head that was not trained gets no metrics (None) and a note saying why.
        """
        records, expr, va, au = self._with_misses()
        y = label_arrays(records)
        result = evaluate_arrays(
            y["expr"],
            expr,
            y["va"],
            va,
            y["au"],
            au,
            au_thresholds=au_thresholds,
            class_names=class_names,
        )
        result.meta.update(
            images=self.n_total,
            scored=len(self.records),
            unreadable=len(self.unreadable),
            tta_flip=self.tta_flip,
            tta=self.tta,
            engine=self.engine,
        )
        if self.unreadable:
            result.notes.append(f"{len(self.unreadable)} unreadable image(s) were skipped.")
        if self.detect:
            self._detection_meta(result)
        scored = self.labels()["expr"]  # the images the model saw (not the misses)
        if self.expr_probs is not None and (scored >= 0).any():
            from liveaffect.evaluation.robustness import prediction_share

            key = "share" if self.degrade else "clean"
            result.robustness[key] = prediction_share(scored, self.expr_probs, class_names)
        for head, preds in (("expr", self.expr_probs), ("va", self.va), ("au", self.au_probs)):
            if preds is None:
                result.notes.append(f"The {head} head is not trained: no {head} metrics.")
        return result

    def statistic(
        self,
        au_thresholds: float | Sequence[float] | None = None,
        class_names: Sequence[str] = EXPRESSIONS,
    ) -> Callable[[np.ndarray], dict[str, float | None]]:
        """Indices into :meth:`group_keys`' frames -> the headline metrics on those frames
        (expression accuracy and macro-F1, VA CCC mean, mean and per-AU F1): what
        :mod:`liveaffect.evaluation.uncertainty` resamples."""
        records, expr, va, au = self._with_misses()
        y = label_arrays(records)

        def pick(a: np.ndarray | None, idx: np.ndarray) -> np.ndarray | None:
            return None if a is None else a[idx]

        def statistic(idx: np.ndarray) -> dict[str, float | None]:
            r = evaluate_arrays(
                y["expr"][idx],
                pick(expr, idx),
                y["va"][idx],
                pick(va, idx),
                y["au"][idx],
                pick(au, idx),
                au_thresholds=au_thresholds,
                class_names=class_names,
            )
            out = {
                "expr_accuracy": r.expr.accuracy,
                "expr_macro_f1": r.expr.macro_f1,
                "va_ccc_mean": r.va.ccc_mean,
                "au_mean_f1": r.au.mean_f1,
            }
            if r.au.n:
                out.update({f"au_f1_{k}": v["f1"] for k, v in r.au.per_au.items()})
            return out

        return statistic

    def group_keys(self) -> list[str]:
        """Each scored frame's group (its record's ``split_key``: the ``group``, else the
        recording), misses included as :meth:`evaluate` scores them."""
        return [r.split_key for r in self._with_misses()[0]]

    def intervals(
        self,
        au_thresholds: float | Sequence[float] | None = None,
        n_resamples: int = 1000,
        seed: int = 0,
        unit: str = "recording",
        class_names: Sequence[str] = EXPRESSIONS,
    ) -> dict[str, Any]:
        """Bootstrap intervals of :meth:`statistic`'s metrics, resampling whole groups
        (:meth:`group_keys`): :mod:`liveaffect.evaluation.uncertainty`."""
        from liveaffect.evaluation.uncertainty import bootstrap_intervals

        statistic = self.statistic(au_thresholds, class_names)
        return bootstrap_intervals(self.group_keys(), statistic, n_resamples, seed=seed, unit=unit)

    def _with_misses(self):
        """Records and outputs to score: with ``no_face="error"`` every miss is appended
        as a wrong answer (no expression, valence/arousal 0, no AU active)."""
        expr, va, au = self.expr_probs, self.va, self.au_probs
        n_missed = len(self.missed_records) if self.no_face == "error" else 0
        if not n_missed:
            return self.records, expr, va, au
        if expr is not None:
            made = np.argmax(expr, axis=1) if len(expr) else np.zeros(0, np.int64)
            expr = np.concatenate([made, np.full(n_missed, NO_PREDICTION)])
        va = None if va is None else np.concatenate([va, np.zeros((n_missed, 2))])
        au = None if au is None else np.concatenate([au, np.zeros((n_missed, au.shape[1]))])
        return [*self.records, *self.missed_records], expr, va, au

    def faces_found(self) -> tuple[int, int]:
        """(images in which the detector found a face, readable images)."""
        readable = self.n_total - len(self.unreadable)
        return readable - len(self.misses), readable

    def _detection_meta(self, result: EvaluationResult) -> None:
        """The detection rate and what happened to the misses, in meta and notes."""
        found, readable = self.faces_found()
        rate = found / readable if readable else 0.0
        result.meta.update(
            detection_misses=len(self.misses), detection_rate=rate, no_face=self.no_face
        )
        what = {
            "error": "are counted as errors in every metric",
            "whole": "were scored on the whole image",
            "skip": "are excluded from all metrics",
        }[self.no_face]
        result.notes.append(
            f"Face detection rate {rate:.3f}: a face was found in {found} of {readable} "
            f"images; the {len(self.misses)} without one {what} (--no-face {self.no_face})."
        )


class LabelSpaceError(ValueError):
    """A model whose card names other expression classes or AUs, or another order, than
    the labels it would be scored against (:mod:`liveaffect.labels`)."""


def check_label_space(bundle: Bundle) -> None:
    """Refuse a model whose trained heads' outputs (as its card names them) are not the
    labels' classes and AUs in the labels' order: output ``k`` is scored against label
    ``k``, so another order would compare different classes without a sign of it.

    Raises:
        LabelSpaceError: naming the bundle and the first output that differs.
    """
    card = bundle.card
    for head, names, labels in (("expr", card.expressions, EXPRESSIONS), ("au", card.aus, AUS)):
        if not card.trained(head) or list(names) == list(labels):
            continue
        what = "expressions" if head == "expr" else "aus"
        pairs = enumerate(zip(names, labels, strict=False))
        differ = next(
            (f"output {k} is {a!r}, the labels' {b!r}" for k, (a, b) in pairs if a != b),
            f"it names {len(names)} outputs, the labels have {len(labels)}",
        )
        raise LabelSpaceError(
            f"{bundle.path}: the card's {what} are not the labels' ({differ}); evaluate "
            f"scores output k against label k, in the order {', '.join(labels)}"
        )


def label_arrays(records: Sequence[Record]) -> dict[str, np.ndarray]:
    """Stack records' labels: ``expr`` (N,), ``va`` (N, 2), ``au`` (N, 12), missing masked.

    The training pipeline's stacking, in the integer/float64 types the metrics take.
    """
    from liveaffect.data.dataset import label_arrays as stack

    labels = stack(records)
    return {
        "expr": labels["expr"].astype(np.int64),
        "va": labels["va"].astype(np.float64),
        "au": labels["au"].astype(np.int64),
    }


def read_image(path: str) -> np.ndarray | None:
    """Read and decode an image (local or ``gs://``); None when unreadable.

    Decoded by :func:`liveaffect.preprocess.decode_image`, as in training.
    """
    try:
        data = io.read_bytes(path)
    except (OSError, ValueError) as exc:
        log.debug("cannot read %s: %s", path, exc)
        return None
    return decode_image(data)


def _best_face(detector: FaceDetector, image: np.ndarray, spec: PreprocessSpec):
    detections = detector.detect(image)
    if not detections:
        return None
    best = max(detections, key=lambda d: d.score)
    return crop_face(image, best.xyxy, spec.crop_margin, spec.square)


def predict_records(
    bundle: Bundle,
    records: Sequence[Record],
    batch_size: int = 64,
    tta_flip: bool = False,
    detector: FaceDetector | None = None,
    progress: bool = True,
    workers: int | None = None,
    tta: TTA | None = None,
    degrade: str | None = None,
    degrade_seed: int = 0,
    no_face: str = "error",
    engine: str = "keras",
) -> Predictions:
    """Predict every record's image with the bundle's model.

    Args:
        bundle: a loaded bundle (:func:`liveaffect.bundle.load_bundle`).
        records: records whose ``path`` is a face image (or a full image with ``detector``).
        batch_size: images per model call (times the number of TTA views).
        tta_flip: average each image's outputs with those of its horizontal mirror
            (shorthand for ``tta=TTA(flip=True)``; ignored when ``tta`` is given).
        detector: optional face detector run on the full image; the best face is used.
        progress: show a tqdm progress bar.
        workers: threads that read and decode images (default: up to 8).
        tta: the views to average (:class:`liveaffect.tta.TTA`), e.g. flip and zooms.
        degrade: score a degraded copy of every image instead (one of
            :data:`liveaffect.data.degrade.KINDS`), made from the image as read, before
            detection and cropping; noise draws are seeded by ``degrade_seed`` and the
            record's position, so a copy is the same on every run.
        no_face: with ``detector``, images without a face are ``"error"`` (counted as
            wrong by :meth:`Predictions.evaluate`), ``"whole"`` (the whole image is scored)
            or ``"skip"`` (left out); all three count them in the detection rate.
        engine: the engine to score with (:func:`liveaffect.engines.engine_names`):
            ``keras`` (default, float32), or e.g. ``tflite-int8`` to measure what the app
            shows when it runs that engine.

    Returns:
        The predictions; heads the card marks untrained are None.
    """
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if no_face not in NO_FACE_MODES:
        raise ValueError(f"no_face must be one of {', '.join(NO_FACE_MODES)}, got {no_face!r}")
    check_label_space(bundle)
    active = [h for h in HEADS if h in bundle.outputs and bundle.card.trained(h)]
    outputs: dict[str, list[np.ndarray]] = {h: [] for h in active}
    tta = tta if tta is not None else TTA(flip=bool(tta_flip))
    scorer = create_engine(bundle, engine, int(batch_size), tta) if active else None
    loader = _FaceLoader(bundle.card.preprocess, detector, degrade, degrade_seed, no_face)
    for result in _scored_batches(loader, scorer, records, int(batch_size), workers, progress):
        for head in active:
            outputs[head].append(result[head])
    if len(loader.unreadable) > _MAX_WARNINGS:
        log.warning("%d unreadable images skipped in all", len(loader.unreadable))
    return Predictions(
        records=loader.kept,
        expr_probs=_stacked(outputs, "expr"),
        va=_stacked(outputs, "va"),
        au_probs=_stacked(outputs, "au"),
        n_total=len(records),
        unreadable=loader.unreadable,
        misses=loader.misses,
        detect=detector is not None,
        no_face=no_face,
        missed_records=loader.missed_records,
        tta_flip=tta.flip,
        tta=tta.describe(),
        degrade=degrade or "",
        engine=_engine_name(scorer, engine),
    )


def _engine_name(scorer, asked: str) -> str:
    """The engine that ran the model (``auto`` resolved), without the test-time views'
    wrapper (:class:`~liveaffect.engines.views.TTAEngine`); ``asked`` when none ran."""
    if scorer is None:
        return asked
    return getattr(scorer, "inner", scorer).name


def _scored_batches(loader, engine, records, batch_size: int, workers, progress: bool):
    """Read, crop and score ``records`` a batch at a time (images decoded on a thread
    pool); yields the engine's outputs per batch with at least one face."""
    from tqdm.auto import tqdm

    with (
        ThreadPoolExecutor(workers or min(8, os.cpu_count() or 1)) as pool,
        tqdm(total=len(records), disable=not progress, unit="img", desc="evaluate") as bar,
    ):
        for start in range(0, len(records), batch_size):
            chunk = records[start : start + batch_size]
            items = pool.map(loader.read, enumerate(chunk, start=start))
            faces = [loader.face(record, item) for record, item in zip(chunk, items, strict=True)]
            faces = [f for f in faces if f is not None]
            bar.update(len(chunk))
            if faces and engine is not None:
                yield engine.predict_heads(np.stack(faces).astype(np.float32, copy=False))


def _stacked(outputs: dict[str, list[np.ndarray]], head: str) -> np.ndarray | None:
    if head not in outputs:
        return None
    parts = outputs[head]
    return np.concatenate(parts) if parts else np.zeros((0, HEAD_WIDTHS[head]), np.float32)


class _FaceLoader:
    """Reads (and degrades) images on worker threads; turns them into model-ready faces
    in order, keeping count of the unreadable images and the detector's misses (handled
    as ``no_face`` says: see :func:`predict_records`)."""

    def __init__(
        self,
        spec: PreprocessSpec,
        detector: FaceDetector | None,
        degrade: str | None,
        degrade_seed: int,
        no_face: str = "error",
    ) -> None:
        if degrade is not None:
            from liveaffect.data.degrade import KINDS

            if degrade not in KINDS:
                raise ValueError(f"degrade must be one of {', '.join(KINDS)}, got {degrade!r}")
        self.spec, self.detector = spec, detector
        self.degrade, self.degrade_seed = degrade, degrade_seed
        self.no_face = no_face
        self.kept: list[Record] = []
        self.unreadable: list[str] = []
        self.misses: list[str] = []
        self.missed_records: list[Record] = []

    def read(self, item: tuple[int, Record]) -> np.ndarray | None:
        """The image of record number ``index`` (a prepared face when no detector runs)."""
        index, record = item
        image = read_image(record.path)
        if image is not None and self.degrade is not None:
            from liveaffect.data.degrade import degrade_copy

            if image.ndim == 3 and image.shape[2] == 4:
                image = image[..., :3]
            rng = np.random.default_rng([self.degrade_seed, index])
            image = degrade_copy(image, self.degrade, rng)
        if image is None or self.detector is not None:
            return image
        return prepare_face(image, self.spec)

    def face(self, record: Record, item: np.ndarray | None) -> np.ndarray | None:
        """The model-ready face of ``record`` (None: unreadable or no face found)."""
        if item is None:
            self.unreadable.append(record.path)
            if len(self.unreadable) <= _MAX_WARNINGS:
                log.warning("unreadable image skipped: %s", record.path)
            return None
        if self.detector is not None:
            crop = _best_face(self.detector, item, self.spec)
            if crop is None:
                self.misses.append(record.path)
                if self.no_face != "whole":
                    if self.no_face == "error":
                        self.missed_records.append(record)
                    return None
                crop = item
            item = prepare_face(crop, self.spec)
        self.kept.append(record)
        return item
