"""The tf.data input pipeline: parallel decode -> shared face preprocessing -> cache ->
shuffle -> batch -> augmentation -> normalisation -> prefetch.

Decoding uses :func:`liveaffect.preprocess.face_pixels` and the last step
:func:`liveaffect.preprocess.normalize`: the same two functions the live app runs,
so a model never sees faces prepared differently from how it was trained.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np

from liveaffect.data import io
from liveaffect.data.records import Record
from liveaffect.labels import AU_MISSING, EXPR_MISSING, NUM_AUS, VA_MISSING
from liveaffect.preprocess import PreprocessSpec, decode_image, face_pixels, normalize

log = logging.getLogger(__name__)
_MAX_NAMED = 10  # unreadable images named one by one before only the count is given


@dataclass
class AugmentConfig:
    """Training-time augmentation (all applied per image, at random).

    Attributes:
        flip: horizontal mirror with probability 0.5.
        rotation_deg: maximum rotation either way, in degrees.
        zoom: maximum relative zoom in or out.
        shift: maximum translation as a fraction of the image size.
        brightness: maximum brightness change as a fraction of the 0..255 range.
        contrast: maximum relative contrast change.
        erasing: probability that a random rectangle of the face (2% to 25% of its area, any
            aspect) is painted mid-grey (random erasing / Cutout); 0 = off.
        degrade: probability that a face gets a random chain of video degradations (blur or
            motion blur, low resolution, lighting, sensor noise, JPEG), applied after the
            geometric and colour steps; see :func:`liveaffect.data.degrade.random_degrade`.
            0 = off.
        degrade_mode: ``chain`` (a random chain of weak and strong steps,
            :func:`liveaffect.data.degrade.random_degrade`) or ``single`` (one kind per
            face at the strengths video brings,
            :func:`liveaffect.data.degrade.random_single_degrade`).
        degrade_kinds: ``single`` mode only: relative weights of the kinds (``blur``,
            ``lowres``, ``noise``, ``dark``; a kind left out is never drawn), e.g.
            ``{blur: 3, lowres: 3, noise: 1, dark: 2}``; None: a quarter each.
        degrade_from: the first epoch (0-based) with degradations; earlier epochs train on
            clean faces. Needs the training loop's :class:`EpochClock`. From scratch, a
            network that sees degraded faces from the first epoch learns expressions far
            more slowly (final_model/MODEL_CARD.md), so a recipe can learn on clean faces first.
    """

    flip: bool = True
    rotation_deg: float = 10.0
    zoom: float = 0.1
    shift: float = 0.1
    brightness: float = 0.2
    contrast: float = 0.2
    erasing: float = 0.0
    degrade: float = 0.0
    degrade_mode: str = "chain"
    degrade_kinds: dict[str, float] | None = None
    degrade_from: int = 0

    def __post_init__(self) -> None:
        names = (
            "rotation_deg", "zoom", "shift", "brightness", "contrast", "erasing", "degrade",
            "degrade_from",
        )  # fmt: skip
        for name in names:
            if getattr(self, name) < 0:
                raise ValueError(f"augment.{name} must be >= 0, got {getattr(self, name)}")
        from liveaffect.data.degrade import MODES, kind_weights

        if self.degrade_mode not in MODES:
            raise ValueError(
                f"augment.degrade_mode must be one of {', '.join(MODES)}, got {self.degrade_mode!r}"
            )
        if self.degrade_kinds is not None:
            if self.degrade_mode != "single":
                raise ValueError("augment.degrade_kinds needs augment.degrade_mode: single")
            if not isinstance(self.degrade_kinds, dict):
                raise ValueError(
                    f"augment.degrade_kinds maps kinds to weights, got {self.degrade_kinds!r}"
                )
            try:
                kind_weights(self.degrade_kinds)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"augment.degrade_kinds: {exc}") from exc
        for name in ("erasing", "degrade"):
            if getattr(self, name) > 1:
                raise ValueError(
                    f"augment.{name} is a probability in [0, 1], got {getattr(self, name)}"
                )

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class EpochClock:
    """The epoch the training loop is in (0-based), for input steps that change with it.

    The loop sets ``epoch`` at the start of every epoch (a Keras callback); the pipeline's
    steps read it when they run.
    """

    epoch: int = 0


def load_face(path: str, spec: PreprocessSpec) -> np.ndarray:
    """Read one face image (local or gs://) and return its uint8 model-size pixels.

    Raises:
        ValueError: the file is not a decodable image (names the path).
    """
    image = decode_image(io.read_bytes(path))
    if image is None:
        raise ValueError(f"{path}: not a readable image")
    return face_pixels(image, spec)


def label_arrays(records: Sequence[Record]) -> dict[str, np.ndarray]:
    """Stack the records' labels with Aff-Wild2's missing values (-1, -5, -1)."""
    n = len(records)
    expr = np.full((n,), EXPR_MISSING, np.int32)
    va = np.full((n, 2), VA_MISSING, np.float32)
    au = np.full((n, NUM_AUS), AU_MISSING, np.float32)
    for i, r in enumerate(records):
        expr[i] = r.expr
        if r.va is not None:
            va[i] = r.va
        if r.au is not None:
            au[i] = r.au
    return {"expr": expr, "va": va, "au": au}


def expression_targets(hard: np.ndarray, teacher: np.ndarray) -> np.ndarray:
    """The 9-column expression target of :class:`~liveaffect.model.losses.MaskedExpressionLoss`:
    the class index, then a teacher's 8 probabilities (-1 where the face has none)."""
    return np.concatenate([hard.reshape(-1, 1).astype(np.float32), teacher], axis=1)


def decode_all(
    records: Sequence[Record], spec: PreprocessSpec, workers: int = 4, progress: bool = True
) -> np.ndarray:
    """Decode every record into one uint8 array (N, H, W, C), in parallel with a progress bar.

    Raises:
        UnreadableImagesError: an image cannot be read (names it); see
            :func:`decode_readable` to skip such images instead.
    """
    images, _ = decode_readable(records, spec, workers, progress, max_unreadable=0.0)
    return images


MAX_UNREADABLE = 0.01
"""Default share of unreadable images a training run skips before it gives up."""


class UnreadableImagesError(io.DatasetError):
    """More images than allowed could not be read; the message names the first few."""


def decode_readable(
    records: Sequence[Record],
    spec: PreprocessSpec,
    workers: int = 4,
    progress: bool = True,
    max_unreadable: float = MAX_UNREADABLE,
    keep_images: bool = True,
) -> tuple[np.ndarray | None, list[Record]]:
    """Decode every record, skipping the images that cannot be read.

    Each skipped image is named in a warning (the first ten, then a count); the run stops
    only when more than ``max_unreadable`` of the images are unreadable.

    Args:
        records: the faces to decode.
        spec: the model's preprocessing.
        workers: decoding threads.
        progress: show a progress bar.
        max_unreadable: the largest share (0-1) of unreadable images that is tolerated.
        keep_images: False only checks the images (returns None for them; saves memory).

    Returns:
        The decoded images (N', H, W, C) uint8 of the readable records, and those records.

    Raises:
        UnreadableImagesError: more than ``max_unreadable`` of the images are unreadable.
    """
    from tqdm import tqdm

    out = np.empty((len(records) if keep_images else 0, *spec.input_shape), np.uint8)

    def work(i: int) -> bool:
        try:
            face = load_face(records[i].path, spec)
        except (OSError, ValueError) as exc:
            log.debug("cannot read %s: %s", records[i].path, exc)
            return False
        if keep_images:
            out[i] = face
        return True

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = pool.map(work, range(len(records)))
        bar = tqdm(
            results, total=len(records), desc="decode faces", disable=not progress, unit="img"
        )
        readable = np.fromiter(bar, bool, count=len(records))
    bad = [records[i].path for i in np.flatnonzero(~readable)]
    if max_unreadable > 0:
        for path in bad[:_MAX_NAMED]:
            log.warning("unreadable image skipped: %s", path)
    _check_unreadable(bad, len(records), max_unreadable)
    kept = [r for r, ok in zip(records, readable, strict=True) if ok]
    if not keep_images:
        return None, kept
    return (out[readable] if bad else out), kept


def _check_unreadable(bad: list[str], total: int, max_unreadable: float) -> None:
    if not bad:
        return
    share = len(bad) / max(total, 1)
    names = ", ".join(bad[:3]) + (" ..." if len(bad) > 3 else "")
    if max_unreadable <= 0:
        raise UnreadableImagesError(f"{len(bad)} of {total} images are unreadable: {names}")
    if share > max_unreadable:
        raise UnreadableImagesError(
            f"{len(bad)} of {total} images ({share:.1%}) are unreadable, more than the "
            f"{max_unreadable:.1%} allowed (data.max_unreadable): {names}"
        )
    log.warning(
        "%d of %d images (%.2f%%) were unreadable and skipped", len(bad), total, 100 * share
    )


def augmenter(cfg: AugmentConfig, seed: int | None = None):
    """A Keras layer stack that augments a batch of 0..255 float images (None: nothing on)."""
    import keras
    from keras import layers

    stack = []
    if cfg.flip:
        stack.append(layers.RandomFlip("horizontal", seed=seed))
    if cfg.rotation_deg:
        stack.append(
            layers.RandomRotation(cfg.rotation_deg / 360.0, fill_mode="reflect", seed=seed)
        )
    if cfg.zoom:
        stack.append(layers.RandomZoom(cfg.zoom, fill_mode="reflect", seed=seed))
    if cfg.shift:
        stack.append(layers.RandomTranslation(cfg.shift, cfg.shift, fill_mode="reflect", seed=seed))
    if cfg.brightness:
        stack.append(layers.RandomBrightness(cfg.brightness, value_range=(0, 255), seed=seed))
    if cfg.contrast:
        stack.append(layers.RandomContrast(cfg.contrast, value_range=(0, 255), seed=seed))
    if cfg.erasing:
        # factor (p, p): each image is erased with probability exactly p.
        stack.append(
            layers.RandomErasing(
                factor=(cfg.erasing, cfg.erasing),
                scale=(0.02, 0.25),
                fill_value=127.5,
                value_range=(0, 255),
                seed=seed,
            )
        )
    return keras.Sequential(stack, name="augment") if stack else None


def make_dataset(
    records: Sequence[Record],
    spec: PreprocessSpec,
    batch_size: int,
    training: bool,
    augment: AugmentConfig | None = None,
    cache: str | None = "memory",
    images: np.ndarray | None = None,
    seed: int = 0,
    clock: EpochClock | None = None,
    expr_teacher: np.ndarray | None = None,
):
    """Build the tf.data pipeline over ``records``.

    Args:
        records: the faces and their (possibly missing) labels.
        spec: the model's preprocessing spec (from the bundle card / config).
        batch_size: images per batch.
        training: shuffle, repeat-free epoch order and augment when True.
        augment: augmentation settings (training only; None = none).
        cache: ``"memory"``, a file path prefix for ``Dataset.cache``, or None.
        images: already decoded uint8 images (skips file decoding).
        seed: shuffle and augmentation seed.
        clock: the training loop's epoch, needed when ``augment.degrade_from`` > 0.
        expr_teacher: ``(N, 8)`` a teacher's expression probabilities per face (-1 rows:
            none); the expression targets become :func:`expression_targets` of the labels
            and these (see :mod:`liveaffect.training.distill`).

    Returns:
        A ``tf.data.Dataset`` of ``(images, {"expr", "va", "au"})`` batches.

    Raises:
        ValueError: ``augment.degrade_from`` without a ``clock``.
    """
    import tensorflow as tf

    labels = label_arrays(records)
    if expr_teacher is not None:
        if len(expr_teacher) != len(records):
            raise ValueError(f"{len(expr_teacher)} teacher rows for {len(records)} faces")
        labels["expr"] = expression_targets(labels["expr"], expr_teacher)
    autotune = tf.data.AUTOTUNE
    h, w, c = spec.input_shape
    if images is not None:
        ds = tf.data.Dataset.from_tensor_slices((images, labels))
    else:
        paths = np.array([r.path for r in records])

        def _load(path):
            return load_face(path.decode() if isinstance(path, bytes) else str(path), spec)

        def load(path, lab):
            img = tf.numpy_function(_load, [path], tf.uint8, stateful=False)
            img.set_shape((h, w, c))
            return img, lab

        ds = tf.data.Dataset.from_tensor_slices((paths, labels))
        ds = ds.map(load, num_parallel_calls=autotune, deterministic=not training)
    if cache == "memory":
        ds = ds.cache()
    elif cache:
        ds = ds.cache(cache)
    if training:
        ds = ds.shuffle(min(len(records), 50_000), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=False)
    aug = augmenter(augment, seed) if (training and augment) else None
    degrade = None
    if training and augment:
        degrade = _degrader(augment, seed, clock)

    def finish(img, lab):
        x = tf.cast(img, tf.float32)
        if aug is not None:
            x = tf.clip_by_value(aug(x, training=True), 0.0, 255.0)
        if degrade is not None:
            x = degrade(x)
        return normalize(x, spec), lab

    ds = ds.map(finish, num_parallel_calls=autotune)
    return ds.prefetch(autotune)


def _degrader(augment: AugmentConfig, seed: int, clock: EpochClock | None = None):
    """A graph function that degrades a float 0..255 batch like video (None when off);
    before epoch ``augment.degrade_from`` of ``clock`` it passes batches through unchanged."""
    probability, start, mode = augment.degrade, augment.degrade_from, augment.degrade_mode
    kinds = augment.degrade_kinds
    if not probability:
        return None
    if start and clock is None:
        raise ValueError("augment.degrade_from needs the training loop's EpochClock")
    import tensorflow as tf

    from liveaffect.data.degrade import random_degrade_batch

    rng = np.random.default_rng(seed + 7919)

    def run(batch: np.ndarray) -> np.ndarray:
        if clock is not None and clock.epoch < start:
            return batch
        pixels = np.clip(batch + 0.5, 0, 255).astype(np.uint8)
        return random_degrade_batch(pixels, probability, rng, mode, kinds).astype(np.float32)

    def apply(x):
        y = tf.numpy_function(run, [x], tf.float32, stateful=True)
        y.set_shape(x.shape)
        return y

    return apply
