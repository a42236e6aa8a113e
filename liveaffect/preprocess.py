"""Face crop and normalisation: the one function that training AND runtime use.

Everything it needs comes from the model bundle's card (:class:`PreprocessSpec`),
never from constants elsewhere, so a model always sees faces prepared the way
it was trained on them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

COLORS = ("rgb", "bgr", "gray")
NORMALIZATIONS = ("none", "unit", "symmetric", "mean_std")


@dataclass(frozen=True)
class PreprocessSpec:
    """How to turn a face crop into a model input.

    Attributes:
        input_size: (height, width) of the model input in pixels.
        color: channel order the model expects: ``"rgb"``, ``"bgr"`` or
            ``"gray"`` (one channel).
        normalization: ``"none"`` (0..255 floats, the model normalises inside),
            ``"unit"`` (0..1), ``"symmetric"`` (-1..1) or ``"mean_std"``.
        mean: per-channel mean (0..255 scale) for ``"mean_std"``.
        std: per-channel std (0..255 scale) for ``"mean_std"``.
        crop_margin: fraction of the detector box added on every side before
            cropping a face from a full frame (training crops already include it).
        square: make the crop square (around the box centre) before resizing.
    """

    input_size: tuple[int, int] = (224, 224)
    color: str = "rgb"
    normalization: str = "none"
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    crop_margin: float = 0.0
    square: bool = True

    def __post_init__(self) -> None:
        h, w = self.input_size
        if int(h) < 8 or int(w) < 8:
            raise ValueError(f"input_size must be at least 8x8, got {self.input_size}")
        if self.color not in COLORS:
            raise ValueError(f"color must be one of {COLORS}, got {self.color!r}")
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(
                f"normalization must be one of {NORMALIZATIONS}, got {self.normalization!r}"
            )
        if not 0.0 <= self.crop_margin <= 1.0:
            raise ValueError(f"crop_margin must be in [0, 1], got {self.crop_margin}")
        if self.normalization == "mean_std" and any(s <= 0 for s in self.std):
            raise ValueError(f"std must be positive, got {self.std}")

    @property
    def channels(self) -> int:
        return 1 if self.color == "gray" else 3

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (int(self.input_size[0]), int(self.input_size[1]), self.channels)

    def to_dict(self) -> dict[str, Any]:
        return {
            "input_size": [int(self.input_size[0]), int(self.input_size[1])],
            "color": self.color,
            "normalization": self.normalization,
            "mean": list(self.mean),
            "std": list(self.std),
            "crop_margin": float(self.crop_margin),
            "square": bool(self.square),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PreprocessSpec:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        if "input_size" in known:
            known["input_size"] = tuple(int(v) for v in known["input_size"])
        for key in ("mean", "std"):
            if key in known:
                known[key] = tuple(float(v) for v in known[key])
        return cls(**known)


IMAGE_SUFFIXES = (
    *(".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".dib", ".tif", ".tiff", ".webp", ".avif"),
    *(".jp2", ".pbm", ".pgm", ".ppm", ".pnm", ".pxm", ".pfm", ".sr", ".ras", ".exr", ".hdr"),
    ".pic",
)
"""Every still-image format OpenCV decodes (:func:`decode_image`; the contents decide)."""


def decode_image(data: bytes) -> np.ndarray | None:
    """Decode an encoded image (JPEG, PNG ...) as stored; None when it is not one.

    The one decoder of training, evaluation and export: ``cv2.IMREAD_UNCHANGED`` (grey,
    BGR or BGRA as stored), 16-bit images scaled to 8 bits.
    """
    buffer = np.frombuffer(data, np.uint8)
    try:
        image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED) if buffer.size else None
    except cv2.error:
        return None
    if image is None or image.size == 0:
        return None
    if image.dtype != np.uint8:
        image = cv2.convertScaleAbs(image, alpha=255.0 / max(float(image.max()), 1.0))
    return image


def to_bgr(image: np.ndarray) -> np.ndarray:
    """Return a 3-channel uint8 BGR image from a grey, BGR or BGRA image.

    A BGR uint8 image is returned as is (no copy); other dtypes are clipped to [0, 255].

    Raises:
        ValueError: the array is not an image (e.g. 5 channels).
    """
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = np.clip(np.nan_to_num(image), 0, 255).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 1:
        image = np.ascontiguousarray(image[:, :, 0])
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise ValueError(f"expected a grey, BGR or BGRA image, got an array of shape {image.shape}")


def expand_box(
    xyxy: Sequence[float], margin: float, square: bool
) -> tuple[float, float, float, float]:
    """Grow a box by ``margin`` of its size on every side, optionally squared."""
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    w, h = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    if square:
        w = h = max(w, h)
    w, h = w * (1.0 + 2.0 * margin), h * (1.0 + 2.0 * margin)
    return (cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0)


def crop_face(
    frame_bgr: np.ndarray, xyxy: Sequence[float], margin: float = 0.0, square: bool = True
) -> np.ndarray:
    """Cut a face out of a frame; parts of the box outside the frame are edge-padded.

    Args:
        frame_bgr: the full frame (grey, BGR or BGRA).
        xyxy: face box in frame pixels (may reach outside the frame).
        margin: fraction of the box size added on every side.
        square: square the box around its centre first.

    Returns:
        A uint8 BGR crop of at least 1x1 pixels.
    """
    frame = to_bgr(frame_bgr)
    fh, fw = frame.shape[:2]
    x1, y1, x2, y2 = expand_box(xyxy, margin, square)
    ix1, iy1 = int(np.floor(x1)), int(np.floor(y1))
    ix2, iy2 = max(int(np.ceil(x2)), ix1 + 1), max(int(np.ceil(y2)), iy1 + 1)
    cx1, cy1, cx2, cy2 = max(ix1, 0), max(iy1, 0), min(ix2, fw), min(iy2, fh)
    if cx1 >= cx2 or cy1 >= cy2:  # entirely outside: nothing to see
        return np.zeros((max(iy2 - iy1, 1), max(ix2 - ix1, 1), 3), np.uint8)
    crop = frame[cy1:cy2, cx1:cx2]
    pad = (cy1 - iy1, iy2 - cy2, cx1 - ix1, ix2 - cx2)
    if any(pad):
        crop = cv2.copyMakeBorder(crop, *pad, borderType=cv2.BORDER_REPLICATE)
    return crop


def face_pixels(face: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """Resize a face crop to the model input and convert its colour (no normalisation).

    Args:
        face: a uint8 face crop, grey (HxW), BGR (HxWx3) or BGRA (HxWx4).
        spec: the bundle's preprocessing spec.

    Returns:
        uint8 array of shape ``spec.input_shape`` (training caches these).
    """
    if face.size == 0:
        raise ValueError("empty face crop")
    height, width = int(spec.input_size[0]), int(spec.input_size[1])
    bgr = to_bgr(face)
    shrinking = bgr.shape[0] > height or bgr.shape[1] > width
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    bgr = cv2.resize(bgr, (width, height), interpolation=interp)
    if spec.color == "gray":
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)[:, :, None]
    if spec.color == "rgb":
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return bgr


def prepare_face(face: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """Resize, convert colour and normalise one face crop for the model.

    This is ``normalize(face_pixels(face, spec), spec)``: training runs the same two
    steps, with augmentation in between.

    Returns:
        float32 array of shape ``spec.input_shape``.
    """
    return normalize(face_pixels(face, spec).astype(np.float32), spec)


def normalize(img, spec: PreprocessSpec):
    """Apply the spec's normalisation to float pixels in 0..255 (NumPy or TF tensors)."""
    if spec.normalization == "unit":
        return img / 255.0
    if spec.normalization == "symmetric":
        return img / 127.5 - 1.0
    if spec.normalization == "mean_std":
        mean = np.asarray(spec.mean[: spec.channels], np.float32)
        std = np.asarray(spec.std[: spec.channels], np.float32)
        return (img - mean) / std
    return img


def prepare_batch(
    frame_bgr: np.ndarray, boxes: Sequence[Sequence[float]], spec: PreprocessSpec
) -> np.ndarray:
    """Crop and prepare every box of a frame into one (N, H, W, C) float32 batch."""
    out = np.empty((len(boxes), *spec.input_shape), np.float32)
    for i, box in enumerate(boxes):
        crop = crop_face(frame_bgr, box, spec.crop_margin, spec.square)
        out[i] = prepare_face(crop, spec)
    return out
