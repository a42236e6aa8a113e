"""Video-like degradations of face images: fixed copies to measure robustness, random ones
to train for it.

Real video faces are blurred (focus, motion), small (a face 20 px high upscaled to the
model's size), noisy and JPEG/H.264-compressed, and often badly lit. Two uses:

* :func:`degrade_copy` makes a *fixed* degraded copy of a face, one of :data:`KINDS`,
  with strengths given for a 48 px face and scaled to the image size. ``evaluate
  --degrade`` scores a model on such copies of a test set.
* :func:`random_degrade` applies a random chain of the same operations (and motion blur,
  gamma, contrast) at random strengths; ``augment.degrade`` in a training config runs it
  on that share of training faces.

OpenCV does the image work; there is no maintained library that applies these to a
batch of uint8 faces inside a tf.data pipeline (Albumentations would add a dependency
for a handful of OpenCV calls).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial

import cv2
import numpy as np

KINDS = ("blur", "lowres", "noise", "dark")
"""The fixed degraded copies ``evaluate --degrade`` knows (``all`` = each of them)."""

DESCRIPTIONS = {
    "blur": "Gaussian blur, sigma 1.6 px at 48 px (defocus)",
    "lowres": "down to 18 px and back up (bilinear): a face 18 px high in the frame",
    "noise": "Gaussian sensor noise (sigma 10 of 255) then JPEG quality 15",
    "dark": "a dark room: brightness x0.4 with gamma 1.4, contrast x0.75, noise sigma 4",
}

_REF = 48.0  # strengths are given for a 48 px face


def _scale(image: np.ndarray) -> float:
    return max(image.shape[0], image.shape[1]) / _REF


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with ``sigma`` pixels (of this image)."""
    if sigma <= 0:
        return image
    out = cv2.GaussianBlur(image, (0, 0), sigmaX=float(sigma), borderType=cv2.BORDER_REFLECT)
    return out.reshape(image.shape)


def motion_blur(image: np.ndarray, length: float, angle_deg: float) -> np.ndarray:
    """Linear motion blur over ``length`` pixels at ``angle_deg``."""
    size = max(round(length), 1)
    if size < 2:
        return image
    kernel = np.zeros((size, size), np.float32)
    kernel[size // 2, :] = 1.0
    centre = ((size - 1) / 2.0, (size - 1) / 2.0)
    rot = cv2.getRotationMatrix2D(centre, float(angle_deg), 1.0)
    kernel = cv2.warpAffine(kernel, rot, (size, size))
    kernel /= max(float(kernel.sum()), 1e-6)
    out = cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT)
    return out.reshape(image.shape)


def low_resolution(image: np.ndarray, side: float) -> np.ndarray:
    """Shrink so the longer side is ``side`` pixels (area averaging), then scale back."""
    h, w = image.shape[:2]
    f = min(float(side) / max(h, w), 1.0)
    small = cv2.resize(
        image, (max(round(w * f), 2), max(round(h * f), 2)), interpolation=cv2.INTER_AREA
    )
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR).reshape(image.shape)


def gaussian_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Add zero-mean Gaussian noise of ``sigma`` (0..255 units), clipped to uint8."""
    noisy = image.astype(np.float32) + rng.normal(0.0, float(sigma), image.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode as JPEG at ``quality`` (1-100) and decode again."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - OpenCV always encodes uint8 images
        return image
    flag = cv2.IMREAD_GRAYSCALE if image.ndim == 2 or image.shape[2] == 1 else cv2.IMREAD_COLOR
    return cv2.imdecode(buf, flag).reshape(image.shape)


def light(image: np.ndarray, gain: float, gamma: float, contrast: float) -> np.ndarray:
    """Exposure ``gain``, ``gamma`` (>1 darkens mid-tones), ``contrast`` about mid-grey."""
    x = image.astype(np.float32) / 255.0
    x = np.power(np.clip(x * gain, 0.0, 1.0), gamma)
    x = (x - 0.5) * contrast + 0.5
    return np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)


def degrade_copy(image: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """The fixed degradation ``kind`` (one of :data:`KINDS`) of one uint8 face.

    Strengths are those of :data:`DESCRIPTIONS` for a 48 px face, scaled with the image
    size; only the noise draws use ``rng`` (seed it for a reproducible copy).
    """
    s = _scale(image)
    if kind == "blur":
        return gaussian_blur(image, 1.6 * s)
    if kind == "lowres":
        return low_resolution(image, 18.0 * s)
    if kind == "noise":
        return jpeg(gaussian_noise(image, 10.0, rng), 15)
    if kind == "dark":
        return gaussian_noise(light(image, 0.4, 1.4, 0.75), 4.0, rng)
    raise ValueError(f"degradation must be one of {', '.join(KINDS)}, got {kind!r}")


def degrade_batch_copy(images: np.ndarray, kind: str, seed: int = 0) -> np.ndarray:
    """:func:`degrade_copy` of every image of a uint8 batch (N, H, W, C), seeded."""
    rng = np.random.default_rng(seed)
    return np.stack([degrade_copy(img, kind, rng) for img in images]) if len(images) else images


def random_degrade(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random chain of video degradations at random strengths (training).

    Each step is applied independently: blur (Gaussian sigma 0.3-2.2 px at 48 px, or
    motion blur 2-6 px), low resolution (14-36 px), lighting (gain 0.3-1.3, gamma
    0.7-1.8, contrast 0.6-1.1), noise (sigma 2-14) and JPEG (quality 10-60); the
    strongest settings reach beyond the fixed copies of :func:`degrade_copy`.
    """
    s = _scale(image)
    out = image
    if rng.random() < 0.5:
        if rng.random() < 0.7:
            out = gaussian_blur(out, rng.uniform(0.3, 2.2) * s)
        else:
            out = motion_blur(out, rng.uniform(2.0, 6.0) * s, rng.uniform(0.0, 180.0))
    if rng.random() < 0.4:
        out = low_resolution(out, rng.uniform(14.0, 36.0) * s)
    if rng.random() < 0.5:
        out = light(out, rng.uniform(0.3, 1.3), rng.uniform(0.7, 1.8), rng.uniform(0.6, 1.1))
    if rng.random() < 0.4:
        out = gaussian_noise(out, rng.uniform(2.0, 14.0), rng)
    if rng.random() < 0.4:
        out = jpeg(out, int(rng.integers(10, 61)))
    return out


def random_single_degrade(
    image: np.ndarray, rng: np.random.Generator, weights: Sequence[float] | None = None
) -> np.ndarray:
    """One of the :data:`KINDS` (uniformly, or by ``weights``, one per kind in that order:
    :func:`kind_weights`), at a random strength around its fixed copy's (training,
    ``augment.degrade_mode: single``).

    Where :func:`random_degrade` chains weak and strong steps, this gives each kind a
    quarter of the degraded faces at the strengths that matter: Gaussian blur sigma
    1.0-2.2 px at 48 px (a third of them motion blur 3-6 px instead), low resolution 14-26
    px, sensor noise sigma 5-14 then JPEG quality 10-40, or a dark room (gain 0.3-0.6,
    gamma 1.1-1.7, contrast 0.6-0.9, noise sigma 2-6). A model trained on only the blurred
    kind reached 0.61 on the blurred copy where the chained mix left it at 0.57
    (final_model/MODEL_CARD.md).
    """
    s = _scale(image)
    if weights is None:
        kind = KINDS[int(rng.integers(len(KINDS)))]
    else:
        kind = KINDS[int(rng.choice(len(KINDS), p=weights))]
    if kind == "blur":
        if rng.random() < 1 / 3:
            return motion_blur(image, rng.uniform(3.0, 6.0) * s, rng.uniform(0.0, 180.0))
        return gaussian_blur(image, rng.uniform(1.0, 2.2) * s)
    if kind == "lowres":
        return low_resolution(image, rng.uniform(14.0, 26.0) * s)
    if kind == "noise":
        return jpeg(gaussian_noise(image, rng.uniform(5.0, 14.0), rng), int(rng.integers(10, 41)))
    dark = light(image, rng.uniform(0.3, 0.6), rng.uniform(1.1, 1.7), rng.uniform(0.6, 0.9))
    return gaussian_noise(dark, rng.uniform(2.0, 6.0), rng)


MODES = {"chain": random_degrade, "single": random_single_degrade}
"""``augment.degrade_mode`` -> the function that degrades one training face."""


def kind_weights(kinds: Mapping[str, float]) -> tuple[float, ...]:
    """The share of each of :data:`KINDS` (in that order) among single-mode degradations,
    from relative weights by name (``augment.degrade_kinds``; a kind left out gets none).

    Raises:
        ValueError: an unknown kind, a negative weight, or weights summing to zero.
    """
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise ValueError(f"degradation kinds are {', '.join(KINDS)}; got {', '.join(unknown)}")
    values = [float(kinds.get(k, 0.0)) for k in KINDS]
    if any(v < 0 for v in values) or sum(values) <= 0:
        raise ValueError(f"degradation kind weights must be >= 0 and not all 0, got {dict(kinds)}")
    total = sum(values)
    return tuple(v / total for v in values)


def random_degrade_batch(
    images: np.ndarray,
    probability: float,
    rng: np.random.Generator,
    mode: str = "chain",
    kinds: Mapping[str, float] | None = None,
) -> np.ndarray:
    """``MODES[mode]`` (:func:`random_degrade` by default) on each image of a uint8 batch
    with ``probability``; ``kinds`` weighs the kinds of the ``single`` mode
    (:func:`kind_weights`; None: a quarter each)."""
    degrade = MODES[mode]
    if kinds is not None:
        if mode != "single":
            raise ValueError(f"degradation kind weights need the single mode, not {mode!r}")
        degrade = partial(degrade, weights=kind_weights(kinds))
    out = images.copy()
    for i in range(len(out)):
        if rng.random() < probability:
            out[i] = degrade(out[i], rng)
    return out
